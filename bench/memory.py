"""Benchmark 3: resident memory of a worker (main process + pool children).

Two workers run side by side on the same machine, each with its own Redis databases, both with
celeryconfig as shipped; one keeps the kit's ``worker_max_tasks_per_child`` (10000) and
``worker_max_memory_per_child`` (256000 KiB), the other has both set back to Celery's default
(None). Each gets N bulk tasks (queue ``low``, ``ignore_result``) that keep 1 KiB per call, a
stand-in for the slow leaks (caches, module-level lists) that the per-child limits exist to contain.

To get 100,000 tasks through both workers within the time budget on a 2-core machine, both sides
also turn off task events and gossip/mingle/heartbeat (identically, so the comparison still
isolates the two limits; the role's default flags are replaced by these). The run stops at
``time_cap`` seconds and reports how many tasks ran.
"""
from __future__ import annotations

import time

from tests.support.procs import rss_kib

from .harness import wait_until
from .tasks import DONE, LEAK_BYTES

SAME_ON_BOTH = {"worker_send_task_events": False, "task_send_sent_event": False}
QUIET = ("--without-gossip", "--without-mingle", "--without-heartbeat")

SIDES = {
    "kit": {"dbs": (3, 4, 5), "conf": {},
            "what": "max_tasks_per_child=10000, max_memory_per_child=256000 KiB (kit)"},
    "no-limits": {"dbs": (6, 7, 8), "conf": {"worker_max_tasks_per_child": None,
                                              "worker_max_memory_per_child": None},
                  "what": "both limits None (Celery's default)"},
}


def run(s, *, n, concurrency, chunk, backlog, time_cap, log):
    for side in SIDES.values():
        for db in side["dbs"]:
            s.db(db).flushdb()
    workers = {}
    try:
        for name, side in SIDES.items():
            workers[name] = s.start_worker("kit", f"mem-{name}", "low", concurrency, dbs=side["dbs"],
                                           conf={**SAME_ON_BOTH, **side["conf"]}, extra=QUIET,
                                           role_args=False)
        for name, side in SIDES.items():
            s.wait_ready("kit", [f"mem-{name}"], dbs=side["dbs"], workers=[workers[name]])
        time.sleep(3)
        idle = {name: rss_kib(w.pid) for name, w in workers.items()}
        apps = {name: s.client("kit", dbs=side["dbs"], conf=SAME_ON_BOTH) for name, side in SIDES.items()}
        counters = {name: s.db(side["dbs"][2]) for name, side in SIDES.items()}
        brokers = {name: s.db(side["dbs"][0]) for name, side in SIDES.items()}
        sent = {name: 0 for name in SIDES}
        samples = []
        t0 = time.monotonic()
        last_sample = 0.0
        deadline = t0 + time_cap
        while True:
            done = {name: int(c.get(DONE) or 0) for name, c in counters.items()}
            now = time.monotonic()
            if now - last_sample >= 1.0:
                last_sample = now
                samples.append({"t_s": round(now - t0, 2), **{
                    name: {"done": done[name], "rss_kib": rss_kib(w.pid)["total_kib"]}
                    for name, w in workers.items()}})
            if all(d >= n for d in done.values()) or now > deadline:
                break
            progressed = False
            for name, app in apps.items():
                if sent[name] < n and brokers[name].llen("low") < backlog:
                    k = min(chunk, n - sent[name])
                    with app.producer_or_acquire() as producer:
                        for _ in range(k):
                            app.send_task("bench.tasks.hold", producer=producer)
                    sent[name] += k
                    progressed = True
            if not progressed:
                time.sleep(0.05)
        done = {name: int(c.get(DONE) or 0) for name, c in counters.items()}
        finished = all(d >= n for d in done.values())
        wait_until(lambda: False, 2.0, 0.5)  # let the last children settle
        after = {name: rss_kib(w.pid) for name, w in workers.items()}
        elapsed = time.monotonic() - t0
    finally:
        s.stop(workers.values())
    result = {"tasks": n, "tasks_done": done, "time_cap_s": time_cap, "concurrency": concurrency,
              "same_on_both": {"conf": SAME_ON_BOTH, "worker_flags": list(QUIET)}, "leak_bytes_per_task": LEAK_BYTES,
              "finished": finished, "elapsed_s": round(elapsed, 1), "samples": samples, "sides": {}}
    for name, side in SIDES.items():
        result["sides"][name] = {"what": side["what"], "idle": idle[name], "after": after[name],
                                 "idle_rss_mib": idle[name]["total_kib"] / 1024,
                                 "after_rss_mib": after[name]["total_kib"] / 1024,
                                 "peak_rss_mib": max(smp[name]["rss_kib"] for smp in samples) / 1024
                                 if samples else None}
        log(f"  memory {name:9s} idle {result['sides'][name]['idle_rss_mib']:.1f} MiB, after {done[name]} tasks "
            f"{result['sides'][name]['after_rss_mib']:.1f} MiB (peak {result['sides'][name]['peak_rss_mib'] or 0:.1f})")
    return result
