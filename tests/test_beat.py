"""Beat, started for real, runs the periodic task once per interval, never twice."""
import time

import pytest

from app.tasks.periodic import TRACE_KEY
from support import procs

INTERVAL = 2


@pytest.fixture
def beat(workers, log_dir, tmp_path, rdb):
    rdb.delete(TRACE_KEY)
    proc = procs.Proc("beat", procs.celery_argv("beat", "-l", "INFO", "--schedule",
                                                str(tmp_path / "schedule")),
                      log_dir, env={"CELERY_BEAT_TRACE_INTERVAL": str(INTERVAL)})
    yield proc
    proc.stop()


def test_periodic_task_runs_once_per_interval(beat, rdb):
    time.sleep(INTERVAL * 4 + 1)
    beat.stop()
    time.sleep(1)  # let the last run finish
    runs = [float(t) for t in rdb.lrange(TRACE_KEY, 0, -1)]
    assert len(runs) >= 3, f"only {len(runs)} runs in {INTERVAL * 4 + 1}s:\n{beat.log()[-2000:]}"
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert min(gaps) > INTERVAL * 0.5, f"two runs too close together (duplicate): {gaps}"
    assert max(gaps) < INTERVAL * 1.8, f"a run was skipped: {gaps}"


def test_beat_keeps_its_schedule_state_where_it_was_told(beat, tmp_path):
    deadline = time.monotonic() + 15
    while not list(tmp_path.glob("schedule*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(tmp_path.glob("schedule*")), beat.log()
