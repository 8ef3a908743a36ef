"""Test session: a real redis-server on a free loopback port and real celery workers.

The broker URL must be in the environment before ``celeryconfig`` is imported, so it is
chosen when this file is loaded.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from support import procs

_PORT = procs.free_port()
_LOG_DIR = Path(tempfile.mkdtemp(prefix="kit-tests-"))
TEST_ENV = {
    "CELERY_BROKER_URL": f"redis://127.0.0.1:{_PORT}/0",
    "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{_PORT}/1",
    "APP_REDIS_URL": f"redis://127.0.0.1:{_PORT}/2",
    "CELERY_RATE_LIMIT_NOTIFY": "4/s",
}
os.environ.update(TEST_ENV)
for _name in ("CELERY_WORKER_QUEUES", "CELERY_WORKER_PREFETCH_MULTIPLIER", "CELERY_TIMEZONE",
              "CELERY_TASK_ROUTES", "CELERY_SERIALIZER", "CELERY_VISIBILITY_TIMEOUT"):
    os.environ.pop(_name, None)
# Imported now, with the session's URLs: a bench session (tests/test_bench_*.py) rewrites the
# environment for its own runs, and a first import inside one would keep its URLs for later tests.
import celeryconfig  # noqa: E402,F401

# Worker layout of the tests: the latency-sensitive queues on one worker, slow and bulk on another.
WORKERS = {"fast": "high,default", "slow": "long,low"}


@pytest.fixture(scope="session")
def log_dir() -> Path:
    return _LOG_DIR


@pytest.fixture(scope="session")
def redis_server(log_dir):
    proc = procs.start_redis(log_dir, _PORT)
    yield f"redis://127.0.0.1:{_PORT}"
    proc.stop()


@pytest.fixture(scope="session")
def celery_app(redis_server):
    from app.celery import app
    return app


@pytest.fixture(scope="session")
def workers(celery_app, log_dir):
    started = {name: procs.start_worker(log_dir, name, queues) for name, queues in WORKERS.items()}
    try:
        procs.wait_for_workers(celery_app, list(started))
        yield started
    finally:
        for proc in started.values():
            proc.stop()


@pytest.fixture
def rdb(celery_app):
    from app.state import redis_client
    return redis_client()


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request):
    """Print the logs of every process the session started when a test fails."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for log in sorted(_LOG_DIR.glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            print(f"\n----- {log.name} (tail) -----\n{tail}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
