"""The ``shared``/``shared-solo`` layouts of ``make bench-layouts`` rest on one mechanism: a worker
that consumes ``high`` and ``long`` gives a free process waiting ``high`` work first when the slow
tasks are sent at Redis priority 9 (kombu keeps one list per priority step and BRPOPs step 0 of all
queues first). Checked with a real redis-server and a real worker; numbers in bench/README.md."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness, mixed  # noqa: E402
from bench.tasks import WAIT_INSTANT, WAIT_LONG  # noqa: E402


@pytest.fixture()
def session():
    with harness.session() as s:
        yield s


def test_a_free_process_takes_waiting_high_work_before_older_long_work(session):
    s = session
    workers = mixed.start_layouts(s, ["shared"], 1)  # one prefork process on high,long
    try:
        dbs = mixed.SIDE_DBS["shared"]
        app, r = s.client("kit", dbs=dbs), s.db(dbs[2])
        sent = []
        for _ in range(3):  # the first one runs, two wait in Redis
            t = time.time()
            app.send_task("bench.tasks.sleep1", args=(t, 0.5), priority=9)
            sent.append(("long", t))
        time.sleep(0.2)
        for _ in range(3):  # newer than the waiting long tasks
            t = time.time()
            app.send_task("bench.tasks.instant", args=(t,))
            sent.append(("instant", t))
        assert harness.wait_until(lambda: r.llen(WAIT_LONG) >= 3 and r.llen(WAIT_INSTANT) >= 3, 30, 0.05)
        long_starts = [t + float(w) for (_, t), w in zip([x for x in sent if x[0] == "long"],
                                                          r.lrange(WAIT_LONG, 0, -1))]
        instant_starts = [t + float(w) for (_, t), w in zip([x for x in sent if x[0] == "instant"],
                                                             r.lrange(WAIT_INSTANT, 0, -1))]
        # Every instant task ran right after the running long task, before the two older long ones.
        assert max(instant_starts) < sorted(long_starts)[1], (instant_starts, long_starts)
    finally:
        s.stop(workers["shared"])
