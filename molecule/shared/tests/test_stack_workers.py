"""Worker hosts: every declared instance running, able to write its state directory, and under
systemd carrying the journal rate limit."""

import labtest
from stack import hv, manager, service_active

testinfra_hosts = ["ansible://celery_workers"]


def test_workers_running_as_declared(host):
    instances = hv(host)["celery_worker_instances"]
    assert instances
    for inst in instances:
        assert service_active(host, f"celery-worker@{inst['name']}.service"), inst["name"]
    if manager(host) == "systemd":
        assert host.service("celery-workers.target").is_enabled


def test_each_worker_can_write_its_own_state_directory(host):
    """Where the worker runs (its unit's mount namespace, or supervisord's), its state directory is
    writable: tasks keep files there (the delivery ledger of app.tasks.probe). ProtectSystem=strict
    leaves every path read-only that the unit does not list."""
    instances = hv(host)["celery_worker_instances"]
    assert instances
    for inst in instances:
        if manager(host) == "supervisor":
            pid = host.check_output("systemctl show -p MainPID --value celery-supervisor.service")
        else:
            pid = host.check_output("systemctl show -p MainPID --value celery-worker@%s.service", inst["name"])
        assert pid not in ("", "0"), inst["name"]
        directory = f"/var/lib/celery/worker-{inst['name']}"
        probe = host.run("sudo nsenter -t %s -m -- sh -c %s", pid,
                         f"f={directory}/.write-check && : > $f && rm $f")
        assert probe.rc == 0, f"{inst['name']}: {directory} is not writable where it runs: {probe.stderr}"


@labtest.on_manager("systemd")  # supervisor writes the workers' logs to files: no journald rate limit applies
def test_worker_units_carry_the_journal_rate_limit(host):
    """systemd applied the instances' LogRateLimit*= (a directive it did not know would read 0 here)."""
    want_burst = str(hv(host).get("celery_worker_log_rate_limit_burst", 200000))
    want_interval = str(hv(host).get("celery_worker_log_rate_limit_interval", "30s"))
    instances = hv(host)["celery_worker_instances"]
    assert instances
    for inst in instances:
        shown = host.check_output("systemctl show -p LogRateLimitBurst -p LogRateLimitIntervalUSec "
                                  "celery-worker@%s", inst["name"])
        assert f"LogRateLimitBurst={want_burst}" in shown, shown
        assert f"LogRateLimitIntervalUSec={want_interval}" in shown, shown
