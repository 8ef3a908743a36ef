"""What ansible/lab-smoke.yml promises on the workers: the broker's Redis reachable over the
private segment only, and the app installed offline from the wheelhouse on the first worker
(the play's `hosts: celery_workers[0]`), nowhere else."""

import labtest

testinfra_hosts = ["ansible://celery_workers"]

SMOKE_ROOT = "/opt/lab-smoke"


def test_worker_reaches_broker_redis_over_private_segment_and_auth_is_enforced(host):
    broker = labtest.address_of(host, "broker")
    route = host.check_output(f"ip -o route get {broker}")
    assert f"src {labtest.private_address(host)}" in route, route
    assert labtest.tcp_roundtrip(host, broker, 6379, "PING").startswith("-NOAUTH")


def test_app_installed_offline_from_wheelhouse_on_the_first_worker_only(host):
    if host.backend.get_hostname() != labtest.hostvars(host)["groups"]["celery_workers"][0]:
        assert not host.file(SMOKE_ROOT).exists
        return
    python = f"{SMOKE_ROOT}/venv/bin/python"
    versions = host.check_output(
        f"{python} -c \"from importlib.metadata import version as v; "
        "print(v('celery'), v('celery-kit-sample'), v('flower'))\""
    )
    assert versions.split() == ["5.7.0", "1.0.0", "2.2.0"]
    # Debian's own Python of the host's release, not the controller's.
    expected = {"bookworm": "3.11.2", "trixie": "3.13.5"}[host.system_info.codename]
    assert host.check_output(f"{python} -c 'import sys; print(sys.version.split()[0])'") == expected
    assert host.file(f"{SMOKE_ROOT}/venv/bin/celery").is_file
