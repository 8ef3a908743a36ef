"""Beat, started for real, runs the periodic task once per interval, never twice, and a second beat
sends nothing while the first holds its lock in Redis."""
import signal
import time

import pytest

from app.tasks.periodic import TRACE_KEY
from support import procs

INTERVAL = 2
LOCK_TIMEOUT = 15
BEAT_ENV = {"CELERY_BEAT_TRACE_INTERVAL": str(INTERVAL), "CELERY_BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT)}


def _start_beat(log_dir, name):
    return procs.Proc(name, procs.celery_argv("beat", "-l", "INFO"), log_dir, env=BEAT_ENV)


def _clean(rdb):
    rdb.delete(TRACE_KEY, *rdb.keys("redbeat:*"))


@pytest.fixture
def beat(workers, log_dir, rdb):
    _clean(rdb)
    proc = _start_beat(log_dir, "beat")
    yield proc
    proc.stop()
    _clean(rdb)


def test_periodic_task_runs_once_per_interval(beat, rdb):
    time.sleep(INTERVAL * 4 + 1)
    beat.stop()
    time.sleep(1)  # let the last run finish
    runs = [float(t) for t in rdb.lrange(TRACE_KEY, 0, -1)]
    assert len(runs) >= 3, f"only {len(runs)} runs in {INTERVAL * 4 + 1}s:\n{beat.log()[-2000:]}"
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert min(gaps) > INTERVAL * 0.5, f"two runs too close together (duplicate): {gaps}"
    assert max(gaps) < INTERVAL * 1.8, f"a run was skipped: {gaps}"


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.2)
    return predicate()


def test_second_beat_sends_nothing_until_the_first_dies(workers, log_dir, rdb):
    _clean(rdb)
    first = _start_beat(log_dir, "beat-first")
    second = None
    try:
        assert _wait_for(lambda: rdb.llen(TRACE_KEY) >= 2, 30), first.log()[-2000:]
        second = _start_beat(log_dir, "beat-second")
        time.sleep(INTERVAL * 4)
        assert "Acquired lock" not in second.log(), "a second beat took the lock while the first lived"
        runs = [float(t) for t in rdb.lrange(TRACE_KEY, 0, -1)]
        gaps = [b - a for a, b in zip(runs, runs[1:])]
        assert min(gaps) > INTERVAL * 0.5, f"two beats sent the same run: gaps {gaps}"

        first.stop(signal.SIGKILL)   # no lock release: the host is gone
        killed_at = time.time()
        assert _wait_for(lambda: "Acquired lock" in second.log(), LOCK_TIMEOUT + 15), second.log()[-2000:]
        assert _wait_for(lambda: float(rdb.lrange(TRACE_KEY, -1, -1)[0]) > killed_at + 1, LOCK_TIMEOUT + 20)
        time.sleep(INTERVAL * 3)
        runs = [float(t) for t in rdb.lrange(TRACE_KEY, 0, -1)]
        gaps = [b - a for a, b in zip(runs, runs[1:])]
        assert min(gaps) > INTERVAL * 0.5, f"a run was sent twice around the takeover: gaps {gaps}"
        assert max(gaps) < LOCK_TIMEOUT + INTERVAL + 10, f"takeover took too long: gaps {gaps}"
    finally:
        first.stop()
        if second is not None:
            second.stop()
        _clean(rdb)
