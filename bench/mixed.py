"""Benchmarks 1 and 4: slow tasks interleaved with latency-sensitive instant tasks, per worker layout.

A *layout* is the set of workers one side runs (``LAYOUTS``); every side has its own Redis
databases, and all layouts of a run stay up for the whole benchmark (no run pays a worker start).

default:      Celery's defaults; one queue, one prefork worker with all N processes, prefetch 4,
              early ack.
kit:          the kit's default layout: a prefork worker on ``long`` with all N processes
              (prefetch 1, late acks) plus one ``solo`` worker on ``high``.
split:        one prefork worker per queue, 1 process for ``high``, N-1 for ``long``.
shared-solo:  one prefork worker on ``high,long`` with all N processes, the slow tasks sent at
              Redis priority 9 so a free process takes waiting ``high`` work first, plus one
              ``solo`` worker on ``high``.
shared:       the same prefork worker alone (priority ordering, no extra process for ``high``).
kit-threads:  like shared-solo, the extra worker a threads pool of 2.
kit-prefetch2: kit with prefetch multiplier 2 on the long pool.

Every kit worker runs the kit as shipped (celeryconfig, the role's default worker flags).
Both sides of a comparison get the same arrival schedule (Poisson, seeded per rate and
repetition). The wait of a task is the time from ``send_task`` to the moment a worker process
starts running it.
"""
from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass

from tests.support.procs import cpu_s, pids_matching

from .harness import median, pct, ratio, wait_until
from .tasks import WAIT_INSTANT, WAIT_LONG

# Target of section 1: the kit's instant p95 at most the default layout's divided by this factor.
TARGET_MIXED_FACTOR = 50
# Layout goals (section 4): the latency class's p95 at least 20x better than Celery's defaults from
# 80 % load on, every other class's p95 wait at most 1.25x the defaults' at every load.
GOAL_INSTANT = 20.0
GOAL_INSTANT_FROM_LOAD = 0.8
GOAL_OTHER = 1.25


@dataclass(frozen=True)
class Layout:
    kind: str  # "kit" (celeryconfig as shipped) or "vanilla" (Celery's defaults)
    what: str
    workers: object  # processes -> [(name, queues, concurrency, pool[, extra environment])]
    long_priority: int | None = None  # message priority of the slow tasks (Redis: 0 highest, 9 lowest)

    def specs(self, processes: int):
        return self.workers(processes)


LAYOUTS = {
    "kit": Layout("kit", "prefork worker on long with all N processes (prefetch 1) + one solo worker on high",
                  lambda n: [("long", "long", n, "prefork"), ("urgent", "high", 1, "solo")]),
    "default": Layout("vanilla", "Celery defaults: one queue, one prefork worker with N processes, "
                      "prefetch 4, early ack", lambda n: [("all", "celery", n, "prefork")]),
    "split": Layout("kit", "prefork worker on high with 1 process + prefork worker on long with N-1",
                    lambda n: [("high", "high", 1, "prefork"), ("long", "long", n - 1, "prefork")]),
    "shared-solo": Layout("kit", "prefork worker on high,long with all N processes (prefetch 1; slow tasks at "
                          "Redis priority 9, so a free process takes high first) + one solo worker on high",
                          lambda n: [("pool", "high,long", n, "prefork"), ("urgent", "high", 1, "solo")],
                          long_priority=9),
    "shared": Layout("kit", "prefork worker on high,long with all N processes (slow tasks at Redis "
                     "priority 9), no extra worker", lambda n: [("pool", "high,long", n, "prefork")],
                     long_priority=9),
    "kit-prefetch2": Layout("kit", "kit with prefetch multiplier 2 on the long pool (CELERY_WORKER_PREFETCH_"
                            "MULTIPLIER=2: one message reserved per process beyond the running ones)",
                            lambda n: [("long", "long", n, "prefork", {"CELERY_WORKER_PREFETCH_MULTIPLIER": "2"}),
                                       ("urgent", "high", 1, "solo")]),
    "kit-threads": Layout("kit", "like shared-solo, the extra worker on high a threads pool of 2",
                          lambda n: [("pool", "high,long", n, "prefork"), ("urgent", "high", 2, "threads")],
                          long_priority=9),
}
# Each side of a run gets its own three Redis databases (broker, results, bench records), in the
# order of the run's sides: 5 sides fit in Redis's 16 databases. Set by start_layouts.
SIDE_DBS: dict[str, tuple[int, int, int]] = {}


def schedule(rate_long: float, rate_instant: float, duration: float, seed: int):
    rng = random.Random(seed)
    events = []
    for kind, rate in (("long", rate_long), ("instant", rate_instant)):
        if rate <= 0:
            continue
        t = rng.expovariate(rate)
        while t < duration:
            events.append((t, kind))
            t += rng.expovariate(rate)
    return sorted(events)


def start_layouts(s, sides, processes: int) -> dict:
    """Start every side's workers, wait until all answer ping; ``{side: [Proc, ...]}``."""
    if len(sides) > 5:
        raise ValueError("at most 5 sides per run (3 Redis databases each)")
    SIDE_DBS.clear()
    SIDE_DBS.update({side: (3 * i, 3 * i + 1, 3 * i + 2) for i, side in enumerate(sides)})
    _flush(s, sides)
    out = {}
    for side in sides:
        layout = LAYOUTS[side]
        out[side] = [s.start_worker(layout.kind, spec[0], spec[1], spec[2], dbs=SIDE_DBS[side], pool=spec[3],
                                    env=spec[4] if len(spec) > 4 else None)
                     for spec in layout.specs(processes)]
    for side in sides:
        s.wait_ready(LAYOUTS[side].kind, [spec[0] for spec in LAYOUTS[side].specs(processes)],
                     dbs=SIDE_DBS[side], workers=out[side])
    return out


SETTLE_S = 1.1  # the last slow tasks of a side's run finish before that side runs again


def run_once(s, side: str, events, processes: int, drain_timeout: float, workers=(),
             long_task: str = "bench.tasks.sleep1", long_seconds: float = 1.0) -> dict:
    dbs = SIDE_DBS[side]
    app = s.client(LAYOUTS[side].kind, dbs=dbs)
    prio = {} if LAYOUTS[side].long_priority is None else {"priority": LAYOUTS[side].long_priority}
    r = s.db(dbs[2])
    r.delete(WAIT_INSTANT, WAIT_LONG)
    # Warm-up: a round trip through the pool processes before the measured stream.
    for _ in range(processes):
        app.send_task("bench.tasks.instant", args=(time.time(),))
        app.send_task(long_task, args=(time.time(), 0.01), **prio)
    wait_until(lambda: r.llen(WAIT_INSTANT) >= processes and r.llen(WAIT_LONG) >= processes, 30, 0.05)
    time.sleep(0.5)
    r.delete(WAIT_INSTANT, WAIT_LONG)
    cpu0 = sum(cpu_s(w.pid) for w in workers)
    t0 = time.time()
    n_long = n_instant = 0
    for at, kind in events:
        delay = t0 + at - time.time()
        if delay > 0:
            time.sleep(delay)
        if kind == "long":
            app.send_task(long_task, args=(time.time(), long_seconds), **prio)
            n_long += 1
        else:
            app.send_task("bench.tasks.instant", args=(time.time(),))
            n_instant += 1
    sent_for = time.time() - t0
    done = wait_until(lambda: r.llen(WAIT_INSTANT) >= n_instant and r.llen(WAIT_LONG) >= n_long,
                      drain_timeout, 0.1)
    # All started; the last slow tasks still run for up to long_seconds (their CPU counts too).
    if done:
        time.sleep(long_seconds * 1.05 + 0.05)
    cpu = sum(cpu_s(w.pid) for w in workers) - cpu0 if workers else None
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
        "worker_cpu_s": round(cpu, 2) if cpu is not None else None,
    }


def vms_running() -> bool:
    """Whether QEMU VMs (the lab's) share this machine: their CPU use would distort the numbers."""
    try:
        return bool(pids_matching("qemu-system", timeout=10))
    except (OSError, subprocess.SubprocessError):
        return False


# Seconds a run may still spend waiting for VMs to stop (set by run_layouts' pause_for_vms).
_pause_budget = {"left": 0.0}


def _pause_while_vms(log) -> float:
    waited = 0.0
    while _pause_budget["left"] > 0 and vms_running():
        if not waited:
            log(f"  VMs running: pausing (up to {_pause_budget['left']:.0f} s more in this run)")
        time.sleep(30)
        waited += 30
        _pause_budget["left"] -= 30
    return waited


def _interleaved(s, sides, workers, plan, reps, processes, drain_timeout, log, label=""):
    """``plan``: [(key, events_for(rep), long_task, long_seconds)]; every side runs every
    (rep, key), the side order rotating per step so noise hits all sides alike."""
    runs = []
    last_end: dict[str, float] = {}
    step = 0
    for rep in range(reps):
        for key, events_for, long_task, long_seconds in plan:
            events = events_for(rep)
            k = step % len(sides)
            order = list(sides[k:]) + list(sides[:k])
            if step % 2:
                order.reverse()
            step += 1
            if _pause_while_vms(log):
                last_end.clear()
            for side in order:
                # Only a side's own previous run can still occupy its processes.
                time.sleep(max(0.0, last_end.get(side, 0.0) + SETTLE_S - time.monotonic()))
                res = run_once(s, side, events, processes, drain_timeout, workers[side],
                               long_task, long_seconds)
                last_end[side] = time.monotonic()
                res.update(rep=rep, vms_running=vms_running(), load_avg_1m=round(os.getloadavg()[0], 2), **key)
                runs.append(res)
                log(f"  {label}rep={rep} {key} {side:11s} instant p50={res['instant_wait_p50_s'] or 0:.4f}s "
                    f"p95={res['instant_wait_p95_s'] or 0:.4f}s max={res['instant_wait_max_s'] or 0:.4f}s "
                    f"long p95={res['long_wait_p95_s'] or 0:.3f}s cpu={res['worker_cpu_s']}s "
                    f"drained={res['drained']}")
    return runs


def _flush(s, sides) -> None:
    for side in sides:
        for db in SIDE_DBS[side]:
            s.db(db).flushdb()


def run(s, *, rates_long, rate_instant, duration, reps, processes, drain_timeout, log,
        sides=("kit", "default"), **_):
    """Benchmark 1 (``make bench``): 1-second tasks at the given rates, kit layout vs defaults."""
    workers = start_layouts(s, sides, processes)
    plan = [({"rate_long_per_s": rate},
             (lambda rep, rate=rate, i=i: schedule(rate, rate_instant, duration, seed=1000 * rep + i)),
             "bench.tasks.sleep1", 1.0) for i, rate in enumerate(rates_long)]
    try:
        return _interleaved(s, list(sides), workers, plan, reps, processes, drain_timeout, log, "mixed ")
    finally:
        s.stop([w for ws in workers.values() for w in ws])


# --- benchmark 4: layouts across workloads --------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    long_task: str
    long_seconds: float  # sleep time, or CPU seconds of work for bench.tasks.spin
    processes: int  # the CPU budget: pool processes of the default layout, and of the kit's pool
    rate_instant: float | None = None  # fixed instant tasks/s, or
    instant_share: float | None = None  # instant tasks as a share of all tasks

    def rates(self, load: float) -> tuple[float, float]:
        rate_long = load * self.processes / self.long_seconds
        if self.instant_share is not None:
            return rate_long, rate_long * self.instant_share / (1 - self.instant_share)
        return rate_long, self.rate_instant or 0.0


WORKLOADS = {
    "sleep-1s": Workload("sleep-1s", "1-second tasks (sleep) + 10 instant tasks/s, 4 processes",
                         "bench.tasks.sleep1", 1.0, 4, rate_instant=10.0),
    "sleep-0.3s": Workload("sleep-0.3s", "0.3-second tasks (sleep) = 20 % of all tasks, 4 processes",
                           "bench.tasks.sleep1", 0.3, 4, instant_share=0.8),
    "cpu-0.25s": Workload("cpu-0.25s", "CPU-bound tasks (0.25 s of sha256 each) + 10 instant tasks/s, "
                          "2 processes = the 2 cores", "bench.tasks.spin", 0.25, 2, rate_instant=10.0),
}


def run_layouts(s, *, workloads, loads, sides, duration, reps, drain_timeout, log, pause_for_vms=0.0, **_):
    """Benchmark 4: every workload at every offered load (slow work / pool capacity), every side.
    ``pause_for_vms``: seconds the run may wait, in total, before a step while VMs are running."""
    _pause_budget["left"] = pause_for_vms
    runs = []
    for wi, wname in enumerate(workloads):
        wl = WORKLOADS[wname]
        workers = start_layouts(s, sides, wl.processes)
        plan = []
        for li, load in enumerate(loads):
            rate_long, rate_instant = wl.rates(load)
            plan.append(({"workload": wname, "load": load},
                         (lambda rep, rl=rate_long, ri=rate_instant, seed=100 * wi + li:
                          schedule(rl, ri, duration, seed=10_000 * rep + seed)),
                         wl.long_task, wl.long_seconds))
        try:
            runs += _interleaved(s, list(sides), workers, plan, reps, wl.processes, drain_timeout, log)
        finally:
            s.stop([w for ws in workers.values() for w in ws])
    return runs


def summarize(runs, params) -> dict:
    """Section 1 per rate of slow tasks: both sides' median waits and the kit's target."""
    by_rate = []
    for rate in params["rates_long"]:
        row = {"rate_long_per_s": rate,
               "offered_load_default": rate / params["processes"],
               }
        for side in ("kit", "default"):
            mine = [r for r in runs if r["rate_long_per_s"] == rate and r["side"] == side]
            row[side] = {k: median([r[k] for r in mine]) for k in (
                "instant_wait_p50_s", "instant_wait_p95_s", "instant_wait_max_s",
                "long_wait_p50_s", "long_wait_p95_s", "long_wait_max_s")}
            row[side]["reps"] = len(mine)
            row[side]["all_drained"] = all(r["drained"] for r in mine)
        p95_ratio = ratio(row["default"]["instant_wait_p95_s"], row["kit"]["instant_wait_p95_s"])
        row["instant_p95_default_over_kit"] = p95_ratio
        row["target_met"] = p95_ratio is not None and p95_ratio >= TARGET_MIXED_FACTOR
        by_rate.append(row)
    return {"processes": params["processes"], "kit_layout": LAYOUTS["kit"].what,
            "rate_instant_per_s": params["rate_instant"], "duration_s": params["duration"],
            "reps": params["reps"], "target": f"kit instant p95 <= default instant p95 / {TARGET_MIXED_FACTOR}",
            "by_rate": by_rate}


def summarize_layouts(runs, params, goal_instant: float, goal_other: float, goal_from_load: float) -> dict:
    keys = ("instant_wait_p50_s", "instant_wait_p95_s", "instant_wait_max_s",
            "long_wait_p50_s", "long_wait_p95_s", "long_wait_max_s", "worker_cpu_s")
    out = {"params": params, "layouts": {k: LAYOUTS[k].what for k in params["sides"]},
           "runs_with_vms_running": sum(1 for r in runs if r.get("vms_running")), "runs": len(runs),
           "load_avg_1m_median": median([r.get("load_avg_1m") for r in runs]),
           "goals": {"instant_p95_default_over_side_min": goal_instant, "from_load": goal_from_load,
                     "long_p95_side_over_default_max": goal_other},
           "workloads": {}}
    for wname in params["workloads"]:
        wl = WORKLOADS[wname]
        rows = []
        for load in params["loads"]:
            rate_long, rate_instant = wl.rates(load)
            row = {"load": load, "rate_long_per_s": round(rate_long, 3),
                   "rate_instant_per_s": round(rate_instant, 3), "sides": {}}
            for side in params["sides"]:
                mine = [r for r in runs if r["workload"] == wname and r["load"] == load and r["side"] == side]
                row["sides"][side] = {k: median([r[k] for r in mine]) for k in keys}
                row["sides"][side].update(reps=len(mine), all_drained=all(r["drained"] for r in mine))
            d = row["sides"]["default"]
            for side in params["sides"]:
                if side == "default":
                    continue
                m = row["sides"][side]
                inst = ratio(d["instant_wait_p95_s"], m["instant_wait_p95_s"])
                other = ratio(m["long_wait_p95_s"], d["long_wait_p95_s"])
                m["instant_p95_default_over_side"] = inst
                m["long_p95_side_over_default"] = other
                m["instant_goal"] = None if load < goal_from_load else bool(inst and inst >= goal_instant)
                m["long_goal"] = bool(other is not None and other <= goal_other)
            rows.append(row)
        out["workloads"][wname] = {"what": wl.what, "processes": wl.processes, "long_task": wl.long_task,
                                   "long_seconds": wl.long_seconds, "by_load": rows}
    return out

