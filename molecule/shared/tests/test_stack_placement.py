"""Every host of the fleet: beat and Flower run exactly on their hosts (Flower's password leaves
with Flower), and no process shows a secret in its argv."""

from stack import groups, hv, manager, service_active

testinfra_hosts = ["ansible://all"]


def runs_only_in_its_group(host, group: str, service: str) -> bool:
    """Asserts ``service`` runs on ``host`` exactly when the host is in ``group`` (under systemd its
    unit file exists only there); returns whether it is."""
    here = group in groups(host)
    if manager(host) == "systemd":
        assert host.file(f"/etc/systemd/system/{service}").exists == here
    assert service_active(host, service) == here
    return here


def test_beat_runs_exactly_on_the_beat_host(host):
    runs_only_in_its_group(host, "celery_beat", "celery-beat.service")


def test_flower_runs_only_on_the_flower_hosts(host):
    if not runs_only_in_its_group(host, "flower", "celery-flower.service"):
        with host.sudo():
            assert not host.file("/etc/celery/flower.env").exists  # its password leaves with Flower


def test_no_secret_in_any_process_argv(host):
    secrets = [hv(host)["celery_redis_password"], hv(host)["celery_flower_basic_auth_password"]]
    argv = host.run("sudo sh -c 'for f in /proc/[0-9]*/cmdline; do tr \"\\0\" \" \" < $f; echo; done'").stdout
    assert "celery" in argv or "redis" in argv  # the scan sees the services at all
    for secret in secrets:
        assert secret not in argv
