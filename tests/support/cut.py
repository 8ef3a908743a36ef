"""A real worker whose broker connection goes through a test-local proxy that cuts it, and the checks
both cut tests make afterwards: the task ran exactly once (read from its ledger file, outside Redis) and
left no unacknowledged record behind."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from celery import Celery

from support import procs


def worker_behind(proxy_port: int, redis_port: int, name: str, log_dir: Path, ledger_dir: Path, monkeypatch):
    """Start a worker (queue ``default``, one process) whose broker is the proxy; the test's own client,
    returned with it, talks to Redis directly."""
    direct = f"redis://127.0.0.1:{redis_port}"
    env = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{proxy_port}/0",
           "CELERY_RESULT_BACKEND": f"{direct}/1", "APP_REDIS_URL": f"{direct}/2",
           "APP_LEDGER_DIR": str(ledger_dir)}
    for var, value in (("CELERY_BROKER_URL", f"{direct}/0"), ("CELERY_RESULT_BACKEND", f"{direct}/1")):
        monkeypatch.setenv(var, value)
    client = Celery("client", set_as_current=False)
    worker = procs.start_worker(log_dir, name, "default", concurrency=1, env=env)
    try:
        procs.wait_for_workers(client, [name])
    except BaseException:
        worker.stop()
        raise
    return client, worker


def completions(ledger_dir: Path, task_id: str) -> int:
    ledger = ledger_dir / "ledger.jsonl"
    if not ledger.exists():
        return 0
    return sum(1 for line in ledger.read_text().splitlines() if json.loads(line)["id"] == task_id)


def assert_ran_once_and_left_nothing(client, worker, ledger_dir: Path, task_id: str, what: str,
                                     timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and completions(ledger_dir, task_id) == 0:
        time.sleep(0.5)
    broker = client.connection_for_write().default_channel.client
    if completions(ledger_dir, task_id) == 0:
        where = {"queued": sum(task_id.encode() in m for m in broker.lrange("default", 0, -1)),
                 "unacked": sum(task_id.encode() in m for m in broker.hvals("unacked"))}
        pytest.fail(f"{what} never completed ({where}):\n" + worker.log()[-4000:])
    time.sleep(2)  # a second copy, if any, would run by now
    assert completions(ledger_dir, task_id) == 1, "the task ran more than once"
    assert not [m for m in broker.hvals("unacked") if task_id.encode() in m], (
        "a record of the task is left in the unacked hash: it would run again after the visibility timeout")
    assert worker.alive(), "the worker died"
