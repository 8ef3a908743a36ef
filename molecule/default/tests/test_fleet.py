"""The default scenario's fleet as a whole: it mixes both service managers, so one converge proves
the systemd units and the supervisor programs. Checked once, from the beat host's inventory."""

testinfra_hosts = ["ansible://celery_beat"]


def test_the_fleet_runs_both_service_managers(host):
    """One converge proves the units and the supervisor programs: neither may drop out of the lab."""
    runner = host.backend.ansible_runner
    celery_hosts = {n for g in ("celery_workers", "celery_beat", "flower") for n in runner.get_hosts(g)}
    managers = {runner.get_variables(n).get("celery_common_service_manager", "systemd") for n in celery_hosts}
    assert managers == {"systemd", "supervisor"}
