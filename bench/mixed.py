"""Benchmark 1: a stream of 1-second tasks interleaved with instant tasks.

kit:     celeryconfig as shipped; 1-second tasks routed to ``long``, instant ones to ``high``; one
         worker per queue (prefetch 1 from PREFETCH_BY_QUEUE, late acks; the role's default worker
         flags from its defaults/main.yml), the processes split between them.
default: Celery's defaults; one queue, one worker with all the processes, prefetch 4, early ack.

Both get the same arrival schedule (Poisson, seeded per rate and repetition). The wait of a task
is the time from ``send_task`` to the moment a worker process starts running it.
"""
from __future__ import annotations

import random
import time

from .harness import pct, wait_until
from .tasks import WAIT_INSTANT, WAIT_LONG


def schedule(rate_long: float, rate_instant: float, duration: float, seed: int):
    rng = random.Random(seed)
    events = []
    for kind, rate in (("long", rate_long), ("instant", rate_instant)):
        t = rng.expovariate(rate)
        while t < duration:
            events.append((t, kind))
            t += rng.expovariate(rate)
    return sorted(events)


DBS = {"kit": (0, 1, 2), "default": (3, 4, 5)}


def start_layouts(s, processes: int, long_processes: int) -> list:
    """Both layouts run for the whole benchmark (each on its own Redis databases); an idle
    worker costs next to nothing, and no run pays a worker start."""
    kit = [s.start_worker("kit", "high", "high", processes - long_processes, dbs=DBS["kit"]),
           s.start_worker("kit", "long", "long", long_processes, dbs=DBS["kit"])]
    default = [s.start_worker("vanilla", "all", "celery", processes, dbs=DBS["default"])]
    s.wait_ready("kit", ["high", "long"], dbs=DBS["kit"], workers=kit)
    s.wait_ready("vanilla", ["all"], dbs=DBS["default"], workers=default)
    return kit + default


SETTLE_S = 1.1  # the last 1-second tasks of a side's run finish before that side runs again


def run_once(s, side: str, events, processes: int, drain_timeout: float) -> dict:
    dbs = DBS[side]
    app = s.client("kit" if side == "kit" else "vanilla", dbs=dbs)
    r = s.db(dbs[2])
    r.delete(WAIT_INSTANT, WAIT_LONG)
    # Warm-up: a round trip through the pool processes before the measured stream.
    for _ in range(processes):
        app.send_task("bench.tasks.instant", args=(time.time(),))
        app.send_task("bench.tasks.sleep1", args=(time.time(), 0.01))
    wait_until(lambda: r.llen(WAIT_INSTANT) >= processes and r.llen(WAIT_LONG) >= processes, 30, 0.05)
    time.sleep(0.5)
    r.delete(WAIT_INSTANT, WAIT_LONG)
    t0 = time.time()
    n_long = n_instant = 0
    for at, kind in events:
        delay = t0 + at - time.time()
        if delay > 0:
            time.sleep(delay)
        if kind == "long":
            app.send_task("bench.tasks.sleep1", args=(time.time(),))
            n_long += 1
        else:
            app.send_task("bench.tasks.instant", args=(time.time(),))
            n_instant += 1
    sent_for = time.time() - t0
    done = wait_until(lambda: r.llen(WAIT_INSTANT) >= n_instant and r.llen(WAIT_LONG) >= n_long,
                      drain_timeout, 0.1)
    instant = [float(x) for x in r.lrange(WAIT_INSTANT, 0, -1)]
    long_ = [float(x) for x in r.lrange(WAIT_LONG, 0, -1)]
    if not done:  # leave nothing queued for the next run
        for db in dbs[:2]:
            s.db(db).flushdb()
    return {
        "side": side, "sent_for_s": round(sent_for, 3), "drained": done,
        "instant_sent": n_instant, "instant_started": len(instant),
        "long_sent": n_long, "long_started": len(long_),
        "instant_wait_p50_s": pct(instant, 0.5), "instant_wait_p95_s": pct(instant, 0.95),
        "instant_wait_max_s": max(instant) if instant else None,
        "long_wait_p50_s": pct(long_, 0.5), "long_wait_p95_s": pct(long_, 0.95),
        "long_wait_max_s": max(long_) if long_ else None,
    }


def run(s, *, rates_long, rate_instant, duration, reps, processes, long_processes, drain_timeout, log):
    for db in (*DBS["kit"], *DBS["default"]):
        s.db(db).flushdb()
    workers = start_layouts(s, processes, long_processes)
    runs = []
    last_end: dict[str, float] = {}
    try:
        for rep in range(reps):
            for i, rate in enumerate(rates_long):
                events = schedule(rate, rate_instant, duration, seed=1000 * rep + i)
                # kit, default, default, kit, ...: both sides see the same noise on average.
                sides = ("kit", "default") if (rep + i) % 2 == 0 else ("default", "kit")
                for side in sides:
                    # Only a side's own previous run can still occupy its processes (the other
                    # side's run in between takes longer than SETTLE_S).
                    time.sleep(max(0.0, last_end.get(side, 0.0) + SETTLE_S - time.monotonic()))
                    res = run_once(s, side, events, processes, drain_timeout)
                    last_end[side] = time.monotonic()
                    res.update(rep=rep, rate_long_per_s=rate)
                    runs.append(res)
                    log(f"  mixed rep={rep} rate={rate}/s {side:7s} instant p50={res['instant_wait_p50_s'] or 0:.4f}s "
                        f"p95={res['instant_wait_p95_s'] or 0:.4f}s max={res['instant_wait_max_s'] or 0:.4f}s "
                        f"long p95={res['long_wait_p95_s'] or 0:.2f}s drained={res['drained']}")
    finally:
        s.stop(workers)
    return runs
