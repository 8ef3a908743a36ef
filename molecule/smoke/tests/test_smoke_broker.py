"""What ansible/lab-smoke.yml promises on the broker: Redis bound to the private segment and
loopback only."""

import labtest

testinfra_hosts = ["ansible://redis"]


@labtest.unit("redis-server")
def test_redis_enabled_running_and_bound_to_private_and_loopback_only(host):
    assert host.package("redis-server").is_installed
    service = host.service("redis-server")
    assert service.is_enabled and service.is_running
    address = labtest.private_address(host)
    assert host.socket(f"tcp://{address}:6379").is_listening
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://10.0.2.15:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening
