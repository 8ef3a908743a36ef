"""What ansible/lab-smoke.yml promises: Redis on the broker, reachable from workers
over the private segment only, and the app installed offline from the wheelhouse."""

import labtest
import pytest

testinfra_hosts = ["redis", "celery_workers"]


def _is(host, group: str) -> bool:
    return group in labtest.hostvars(host)["group_names"]


@labtest.unit("redis-server")
def test_redis_enabled_running_and_bound_to_private_and_loopback_only(host):
    if not _is(host, "redis"):
        pytest.skip("broker only")
    assert host.package("redis-server").is_installed
    service = host.service("redis-server")
    assert service.is_enabled and service.is_running
    address = labtest.private_address(host)
    assert host.socket(f"tcp://{address}:6379").is_listening
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://10.0.2.15:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening


def test_worker_reaches_broker_redis_over_private_segment_and_auth_is_enforced(host):
    if not _is(host, "celery_workers"):
        pytest.skip("workers only")
    broker = labtest.address_of(host, "broker")
    route = host.check_output(f"ip -o route get {broker}")
    assert f"src {labtest.private_address(host)}" in route, route
    assert labtest.tcp_roundtrip(host, broker, 6379, "PING").startswith("-NOAUTH")


def test_app_installed_offline_from_wheelhouse(host):
    if host.backend.get_hostname() != labtest.hostvars(host)["groups"]["celery_workers"][0]:
        pytest.skip("first worker only")
    python = "/opt/lab-smoke/venv/bin/python"
    versions = host.check_output(
        f"{python} -c \"from importlib.metadata import version as v; "
        "print(v('celery'), v('celery-kit-sample'), v('flower'))\""
    )
    assert versions.split() == ["5.7.0", "1.0.0", "2.2.0"]
    # Debian's own Python of the host's release, not the controller's.
    expected = {"bookworm": "3.11.2", "trixie": "3.13.5"}[host.system_info.codename]
    assert host.check_output(f"{python} -c 'import sys; print(sys.version.split()[0])'") == expected
    assert host.file("/opt/lab-smoke/venv/bin/celery").is_file
