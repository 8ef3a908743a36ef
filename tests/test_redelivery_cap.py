"""A task that kills its pool process is run at most 1 + CELERY_TASK_MAX_REDELIVERIES times,
then moved to the dead-letter list; the worker keeps serving other tasks."""
from __future__ import annotations

import json
import time

import pytest
from celery import Celery

from celeryconfig.redelivery import DEAD_LETTER_KEY, EXECUTIONS_KEY
from support import procs


@pytest.fixture
def isolated(redis_server, monkeypatch):
    """A broker and backend of their own (other Redis databases): no session worker sees them."""
    env = {"CELERY_BROKER_URL": f"{redis_server}/5", "CELERY_RESULT_BACKEND": f"{redis_server}/6",
           "APP_REDIS_URL": f"{redis_server}/7"}
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):  # Celery reads these first
        monkeypatch.setenv(name, env[name])
    client = Celery("client", set_as_current=False)
    client.conf.result_backend = env["CELERY_RESULT_BACKEND"]
    backend = client.backend.client
    backend.delete(DEAD_LETTER_KEY)
    yield env, client, backend
    backend.flushdb()
    client.connection_for_write().default_channel.client.flushdb()


def test_task_that_kills_its_worker_is_dead_lettered_after_the_cap(isolated, log_dir):
    env, client, backend = isolated
    worker = procs.start_worker(log_dir, "cap", "default", concurrency=1,
                                env={**env, "CELERY_TASK_MAX_REDELIVERIES": "2"})
    try:
        procs.wait_for_workers(client, ["cap"])
        crash = client.send_task("app.tasks.failing.crash", queue="default")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not backend.llen(DEAD_LETTER_KEY):
            time.sleep(0.5)
        entries = [json.loads(e) for e in backend.lrange(DEAD_LETTER_KEY, 0, -1)]
        assert [e["id"] for e in entries] == [crash.id], worker.log()[-3000:]
        assert entries[0]["task"] == "app.tasks.failing.crash"
        assert entries[0]["queue"] == "default"
        # First delivery plus two counted redeliveries, then no further run.
        assert int(backend.get(EXECUTIONS_KEY.format(crash.id))) == 2
        assert crash.state == "REVOKED"
        assert f"{crash.id}] was redelivered 2 times" in worker.log()
        # The worker survived its crashing children and still runs work.
        ok = client.send_task("app.tasks.math.add", args=(2, 3), queue="default")
        assert ok.get(timeout=30) == 5
        time.sleep(2)
        assert int(backend.get(EXECUTIONS_KEY.format(crash.id))) == 2, "the task ran again after the cap"
    finally:
        worker.stop()
