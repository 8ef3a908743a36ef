"""A Redis restart under a running late-acked task must not lose it.

Real redis-server (AOF on, as the role configures it) and a real worker with the kit's
configuration; the task records its completion in a ledger file outside Redis
(``app.tasks.probe``), so the verdict does not depend on the component being restarted.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from celery import Celery

from support import procs


def _start_redis(log_dir: Path, data_dir: Path, port: int, name: str) -> procs.Proc:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = procs.Proc(name, [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "everysec",
                             "--dir", str(data_dir)], log_dir)
    procs.wait_for_port(port)
    return proc


def _completions(ledger: Path, task_id: str) -> int:
    if not ledger.exists():
        return 0
    return sum(1 for line in ledger.read_text().splitlines() if json.loads(line)["id"] == task_id)


@pytest.fixture
def restartable_broker(log_dir, tmp_path):
    port = procs.free_port()
    data = tmp_path / "redis"
    data.mkdir()
    state = {"proc": _start_redis(log_dir, data, port, f"redis-restart-{port}")}

    def restart(down_seconds: float) -> None:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown"], check=False, capture_output=True)
        state["proc"].stop()
        time.sleep(down_seconds)
        state["proc"] = _start_redis(log_dir, data, port, f"redis-restart-{port}-again")

    yield port, restart
    state["proc"].stop()


def test_running_long_task_survives_a_redis_restart(restartable_broker, log_dir, tmp_path, monkeypatch):
    port, restart = restartable_broker
    url = f"redis://127.0.0.1:{port}"
    env = {"CELERY_BROKER_URL": f"{url}/0", "CELERY_RESULT_BACKEND": f"{url}/1",
           "APP_REDIS_URL": f"{url}/2", "APP_LEDGER_DIR": str(tmp_path)}
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):  # Celery reads these before its arguments
        monkeypatch.setenv(name, env[name])
    client = Celery("client", set_as_current=False)
    worker = procs.start_worker(log_dir, f"restart-{port}", "long", concurrency=1, env=env)
    try:
        procs.wait_for_workers(client, [f"restart-{port}"])
        result = client.send_task("app.tasks.probe.record", kwargs={"seconds": 8}, queue="long")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            active = client.control.inspect(timeout=1.0).active() or {}
            if any(t["id"] == result.id for tasks in active.values() for t in tasks):
                break
        else:
            pytest.fail("the task never started")

        restart(down_seconds=3)

        ledger = tmp_path / "ledger.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _completions(ledger, result.id) == 0:
            time.sleep(0.5)
        assert _completions(ledger, result.id) >= 1, (
            "the long task running during the Redis restart never completed:\n" + worker.log()[-3000:])
        assert worker.alive(), "the worker died on the Redis restart"
    finally:
        worker.stop()
