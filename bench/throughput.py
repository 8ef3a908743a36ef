"""Benchmark 2: short-task throughput, end to end (publisher and worker share the machine).

Every configuration gets the same work: N no-op tasks published as fast as one producer can,
counted done when the last one has run. ``tasks_per_s`` = N / (last done - first publish).
Redis commands per task come from ``INFO commandstats`` deltas over the measured window (the
bench's own completion counter and polling are subtracted).

Every configuration runs against the Redis persistence the celery_redis role ships (AOF on,
``appendfsync everysec``, read from the role's defaults: ``harness.kit_redis_settings``) unless
its ``redis`` field says otherwise; the settings are applied with ``CONFIG SET`` before the run
and the session's own are restored after the section.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from tests.support.procs import cpu_s

from .harness import kit_redis_settings, kit_worker_args, median, ratio, wait_until
from .tasks import DONE

# Targets: the kit's tasks/s at least this many times Celery's defaults', and the best grid point's.
TARGET_VS_DEFAULTS = 1.0
TARGET_VS_BEST = 0.9
# The rows the report compares the kit with, besides Celery's defaults and the best grid point.
FLOWER_BASELINE = "celery-defaults-flower-attached"
FSYNC_ALWAYS = "kit-appendfsync-always"


@dataclass
class Config:
    name: str
    kind: str                      # "kit" (celeryconfig) or "vanilla" (Celery defaults)
    group: str                     # kit | default | grid | attribution
    what: str
    queues: str = "default"
    task: str = "bench.tasks.noop"
    concurrency: int = 2
    pool: str = "prefork"
    extra: tuple = ()
    conf: dict = field(default_factory=dict)
    role_args: bool = True  # kit workers: start with the celery_worker role's default flags
    redis: dict = field(default_factory=kit_redis_settings)  # redis-server CONFIG SET for this run


NO_CHATTER = ("--without-gossip", "--without-mingle", "--without-heartbeat")


# What attaching Flower turns on anyway: worker task events (Flower's ``enable_events``, on by
# default, sends the enable_events control command to every worker) and the producer's task-sent
# events (``task_send_sent_event``, a client setting Flower's task view relies on for the SENT state).
FLOWER_EVENTS = {"worker_send_task_events": True, "task_send_sent_event": True}


def redis_text(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def configs(attribution: bool = True, names=None) -> list[Config]:
    """Every configuration (``names``: only those, in this order)."""
    kit_flags = " ".join(kit_worker_args())
    kit_redis = kit_redis_settings()
    out = [
        Config("kit", "kit", "kit", "kit as shipped: default queue, prefetch 4, late acks, task events, "
               f"result_extended, max-tasks/memory-per-child; role flags {kit_flags}; Redis as the "
               f"celery_redis role ships it ({redis_text(kit_redis)})", queues="default"),
        Config("celery-defaults", "vanilla", "default", "Celery defaults (prefork 2, prefetch 4, early ack)",
               queues="celery"),
        Config("celery-defaults-flower-attached", "vanilla", "default",
               "Celery defaults + what attaching Flower turns on anyway: worker task events (--task-events) "
               "and task_send_sent_event=True (the fair baseline for the kit, which keeps both for Flower)",
               queues="celery", conf=dict(FLOWER_EVENTS), extra=("--task-events",)),
        Config("prefetch-16", "vanilla", "grid", "defaults + prefetch multiplier 16", queues="celery",
               conf={"worker_prefetch_multiplier": 16}),
        Config("threads", "vanilla", "grid", "defaults + threads pool (2 threads)", queues="celery",
               pool="threads"),
        Config("solo", "vanilla", "grid", "defaults + solo pool (1 process)", queues="celery",
               pool="solo", concurrency=1),
        Config("ignore-result", "vanilla", "grid", "defaults + task_ignore_result", queues="celery",
               conf={"task_ignore_result": True}),
        Config("no-gossip-mingle-heartbeat", "vanilla", "grid",
               "defaults + --without-gossip --without-mingle --without-heartbeat", queues="celery",
               extra=NO_CHATTER),
        Config("tuned", "vanilla", "grid", "defaults + prefetch 16 + ignore_result + no gossip/mingle/heartbeat",
               queues="celery", extra=NO_CHATTER,
               conf={"worker_prefetch_multiplier": 16, "task_ignore_result": True}),
    ]
    if attribution:
        out += [
            Config("kit-bulk-queue", "kit", "attribution",
                   "kit as shipped, bulk task (ignore_result) on the low queue, prefetch 16",
                   queues="low", task="bench.tasks.bulk_noop"),
            Config("kit-no-result-extended", "kit", "attribution", "kit + result_extended=False",
                   conf={"result_extended": False}),
            # What Flower's task view costs: the same kit without any task event (worker or producer).
            Config("kit-no-task-events", "kit", "attribution",
                   "kit without task events (no --task-events, task_send_sent_event=False); not a "
                   "deployable default: Flower needs them and turns them on itself",
                   conf={"worker_send_task_events": False, "task_send_sent_event": False},
                   role_args=False, extra=tuple(a for a in kit_worker_args() if a != "--task-events")),
            # What the role's durable option costs: fsync before every reply instead of once a second.
            Config("kit-appendfsync-always", "kit", "attribution",
                   "kit as shipped, redis-server with appendfsync always (celery_redis_appendfsync: always: "
                   "fsync of the AOF before every reply) instead of the role's "
                   f"{kit_redis.get('appendfsync')}",
                   redis={**kit_redis, "appendonly": "yes", "appendfsync": "always"}),
        ]
    if names is not None:
        by_name = {c.name: c for c in configs(True)}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown throughput configuration(s) {unknown}; known: {', '.join(by_name)}")
        out = [by_name[n] for n in names]
    return out


@contextlib.contextmanager
def redis_restored(s, cfgs):
    """Whatever ``run_once`` sets on the shared redis-server is undone after the section, so the
    sections after it (layouts, memory) see the session's redis-server as it started."""
    names = sorted({k for c in cfgs for k in c.redis})
    original = s.redis_settings(names)
    try:
        yield
    finally:
        s.redis_config(original)


def run_once(s, cfg: Config, n: int, timeout: float) -> dict:
    s.redis_config(cfg.redis)  # a no-op when the previous run used the same settings
    s.redis.flushall()
    worker = s.start_worker(cfg.kind, "tp", cfg.queues, cfg.concurrency, conf=cfg.conf, pool=cfg.pool,
                            extra=cfg.extra, role_args=cfg.role_args)
    try:
        s.wait_ready(cfg.kind, ["tp"], workers=[worker])
        app = s.client(cfg.kind, conf=cfg.conf)
        r = s.db(2)
        polls = 0

        def done():
            nonlocal polls
            polls += 1
            return int(r.get(DONE) or 0) >= n

        time.sleep(0.3)
        before = s.commandstats()
        cpu0 = (cpu_s(worker.pid), cpu_s(s.redis_proc.pid, tree=False), sum(os.times()[:2]))
        t0 = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(n):
                app.send_task(cfg.task, producer=producer)
        t_pub = time.perf_counter()
        finished = wait_until(done, timeout, 0.02)
        t1 = time.perf_counter()
        cpu1 = (cpu_s(worker.pid), cpu_s(s.redis_proc.pid, tree=False), sum(os.times()[:2]))
        after = s.commandstats()
    finally:
        s.stop([worker])
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["incrby"] = delta.get("incrby", 0) - n  # redis-py sends INCR as INCRBY
    delta["get"] = delta.get("get", 0) - polls
    delta = {k: v for k, v in delta.items() if v > 0 and k not in ("info",)}
    total = sum(delta.values())
    return {"config": cfg.name, "finished": finished, "tasks": n, "redis": dict(cfg.redis),
            "worker_flags": list(dict.fromkeys([*(kit_worker_args() if cfg.kind == "kit" else ()), *cfg.extra])),
            "tasks_per_s": n / (t1 - t0) if finished else None,
            "publish_s": t_pub - t0, "total_s": t1 - t0,
            "redis_commands_per_task": total / n,
            # CPU per task barely depends on what else the machine runs, unlike tasks/s.
            "cpu_ms_per_task": {part: 1000 * (b - a) / n for part, a, b in
                                zip(("worker", "redis", "producer"), cpu0, cpu1)},
            "redis_commands": dict(sorted(delta.items(), key=lambda kv: -kv[1]))}


def run(s, *, n, reps, timeout, attribution, log, attribution_reps=None, names=None):
    """Every configuration (``names``: only those) runs ``reps`` times, interleaved; the
    attribution variants (which explain the kit's row rather than compete with it) only in the
    first ``attribution_reps``."""
    cfgs = configs(attribution, names)
    attribution_reps = reps if attribution_reps is None else attribution_reps
    runs = []
    with redis_restored(s, cfgs):
        _run_reps(s, cfgs, runs, n=n, reps=reps, timeout=timeout, attribution_reps=attribution_reps, log=log)
    return cfgs, runs, summarize(cfgs, runs)


def _run_reps(s, cfgs, runs, *, n, reps, timeout, attribution_reps, log):
    for rep in range(reps):
        order = cfgs if rep % 2 == 0 else list(reversed(cfgs))  # interleaved, alternating order
        for cfg in order:
            if cfg.group == "attribution" and rep >= attribution_reps:
                continue
            res = run_once(s, cfg, n, timeout)
            res["rep"] = rep
            runs.append(res)
            tps = res["tasks_per_s"]
            cpu = res["cpu_ms_per_task"]
            log(f"  throughput rep={rep} {cfg.name:31s} {tps or 0:7.0f} tasks/s "
                f"{res['redis_commands_per_task']:.1f} redis cmds/task, CPU ms/task worker "
                f"{cpu['worker']:.2f} redis {cpu['redis']:.2f} producer {cpu['producer']:.2f}")


def summarize(cfgs, runs) -> dict:
    summary = {}
    for cfg in cfgs:
        mine = [r for r in runs if r["config"] == cfg.name]
        summary[cfg.name] = {
            "group": cfg.group, "what": cfg.what, "reps": len(mine), "redis": dict(cfg.redis),
            "tasks_per_s": median([r["tasks_per_s"] for r in mine]),
            "tasks_per_s_all": [r["tasks_per_s"] for r in mine],
            "redis_commands_per_task": median([r["redis_commands_per_task"] for r in mine]),
            "cpu_ms_per_task": {part: median([r["cpu_ms_per_task"][part] for r in mine])
                                for part in ("worker", "redis", "producer")},
            "redis_commands_example": mine[0]["redis_commands"] if mine else {},
        }
    return summary


def verdict(summary, ceiling) -> dict:
    """The kit against Celery's defaults, the best grid point and the other baselines, with the
    targets; adds each row of ``summary`` its Redis ceiling (``ceiling``: ``Session.redis_benchmark``)."""
    kit = summary["kit"]["tasks_per_s"]
    default = summary["celery-defaults"]["tasks_per_s"]
    grid = {k: v["tasks_per_s"] for k, v in summary.items() if v["group"] in ("grid", "default")
            and k != FLOWER_BASELINE}
    best = max(grid, key=lambda k: grid[k] or 0)
    out = {"kit_tasks_per_s": kit, "celery_defaults_tasks_per_s": default,
           "best_grid_point": best, "best_grid_tasks_per_s": grid[best],
           "kit_over_defaults": ratio(kit, default), "kit_over_best": ratio(kit, grid[best]),
           "target_vs_defaults": TARGET_VS_DEFAULTS, "target_vs_best": TARGET_VS_BEST}
    flower = summary.get(FLOWER_BASELINE, {}).get("tasks_per_s")
    always = summary.get(FSYNC_ALWAYS, {}).get("tasks_per_s")
    out.update({"celery_defaults_flower_attached_tasks_per_s": flower,
                "kit_over_defaults_flower_attached": ratio(kit, flower),
                "kit_appendfsync_always_tasks_per_s": always,
                "kit_appendfsync_always_over_kit": ratio(always, kit),
                "kit_redis": summary["kit"].get("redis"),
                "kit_appendfsync_always_redis": summary.get(FSYNC_ALWAYS, {}).get("redis")})
    out["target_vs_defaults_met"] = (out["kit_over_defaults"] or 0) >= TARGET_VS_DEFAULTS
    out["target_vs_best_met"] = (out["kit_over_best"] or 0) >= TARGET_VS_BEST
    ops = ceiling.get("median_ops_per_s")
    for row in summary.values():
        cmds = row["redis_commands_per_task"]
        row["redis_ceiling_tasks_per_s"] = ops / cmds if ops and cmds else None
        row["fraction_of_redis_ceiling"] = ratio(row["tasks_per_s"], row["redis_ceiling_tasks_per_s"])
        row["over_celery_defaults"] = ratio(row["tasks_per_s"], default)
    return out
