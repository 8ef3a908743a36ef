"""Logs: journald keeps every line of a busy worker instance (driven from the beat host)."""

import json
import time

import labtest
import pytest
from stack import celery_python, lab_state

testinfra_hosts = ["ansible://celery_beat"]

LOG_LINES = 80_000
LOG_BURST = """
import json
from app.celery import app
r = app.send_task("app.tasks.probe.record", kwargs={{"log_lines": {lines}}}, queue={queue!r})
r.get(timeout=600)
print(json.dumps(r.id))
"""


def _single_systemd_consumer(host) -> tuple[str, str, str] | None:
    """(queue, host, instance) of a queue that exactly one instance consumes, on a systemd host."""
    runner = host.backend.ansible_runner
    consumers: dict[str, list] = {}
    for name in runner.get_hosts("celery_workers"):
        variables = runner.get_variables(name)
        for inst in variables.get("celery_worker_instances", []):
            for queue in inst["queues"]:
                consumers.setdefault(queue, []).append(
                    (name, inst["name"], variables.get("celery_common_service_manager", "systemd")))
    for queue, found in sorted(consumers.items()):
        if len(found) == 1 and found[0][2] == "systemd":
            return queue, found[0][0], found[0][1]
    return None


def test_the_fleet_has_a_queue_with_a_single_consumer_under_systemd(host):
    """The burst below needs one: its lines all land in one unit's journal."""
    assert _single_systemd_consumer(host) is not None


@labtest.unit("systemd-journald")
def test_the_journal_keeps_every_line_of_a_burst_of_worker_logs(host):
    """One task logs LOG_LINES lines as fast as it can: more than journald's default rate limit lets
    through in its 30-s window (10000 lines, scaled by free disk space: about 37,500 on the lab's
    disks), fewer than the units' LogRateLimitBurst (celery_worker_log_rate_limit_burst). Under TCG a
    task logs about 500 lines/s, 15,000 per window: the default limit would not drop any, so the test
    could not fail there and runs only on a lab with KVM."""
    if lab_state()["accel"] != "kvm":
        pytest.skip(f"the lab runs under {lab_state()['accel']}: too slow to log past journald's default limit")
    target = _single_systemd_consumer(host)
    assert target is not None, "no queue with a single consumer under systemd in this fleet"
    queue, name, instance = target
    worker = host.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)
    since = worker.check_output("date +%s")
    task_id = json.loads(celery_python(host, LOG_BURST.format(lines=LOG_LINES, queue=queue),
                                       timeout=660).splitlines()[-1])
    unit = f"celery-worker@{instance}"
    deadline, count = time.time() + 120, 0
    while time.time() < deadline:
        count = int(worker.check_output(
            f"sudo journalctl -u {unit} --since @{since} -o cat | grep -c 'probe {task_id} log line' || true"))
        if count >= LOG_LINES:
            break
        time.sleep(5)
    suppressed = worker.run(f"sudo journalctl -u systemd-journald --since @{since} -o cat | grep -i suppressed").stdout
    assert count == LOG_LINES, f"{unit} on {name}: {count} of {LOG_LINES} lines in the journal; {suppressed}"
