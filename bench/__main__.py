"""``python -m bench [--smoke] [--only mixed,throughput,memory,layouts] [--throughput-configs A,B] [--results DIR]``

Runs the benchmarks against a private redis-server and real workers, prints the ratios against
the kit's targets and writes JSON, PNG plots and RESULTS.md under ``--results``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from . import harness, memory, mixed, plots, throughput
from .harness import median

# Time budget of the full profile on a quiet 2-core machine (bench/README.md): mixed ~4 min
# (18 runs of ~13 s: 10 s stream + drain + settle), throughput ~2.5 min (13 configurations x 3
# reps = 39 worker starts of ~4 s),
# memory up to its time cap (300 s); make bench's hard limit is 15 min (bench/bench.mk).
PROFILES = {
    "full": {
        "redis_benchmark_requests": 100_000,
        # 1-second tasks per second on 4 processes: the default layout (4 processes for
        # everything) is at 80 %, 95 % and 110 % of its capacity of ~4/s, i.e. from near
        # saturation to overloaded; below that neither layout queues (bench/README.md).
        "mixed": dict(rates_long=[3.2, 3.8, 4.4], rate_instant=10.0, duration=10.0, reps=3,
                      processes=4, sides=["kit", "default"], drain_timeout=40.0),
        # Benchmark 4 (make bench-layouts, not part of make bench): the default layout against
        # Celery's defaults and the alternatives on three workloads at 50/80/95 % offered load.
        "layouts": dict(workloads=list(mixed.WORKLOADS), loads=[0.5, 0.8, 0.95],
                        sides=["kit", "default", "split", "shared-solo"], duration=10.0, reps=3,
                        drain_timeout=60.0),
        "throughput": dict(n=500, reps=3, timeout=90.0, attribution=True, attribution_reps=3),
        "memory": dict(n=100_000, concurrency=2, chunk=500, backlog=3000, time_cap=300.0),
    },
    "smoke": {
        "redis_benchmark_requests": 2000,
        "mixed": dict(rates_long=[3.0], rate_instant=10.0, duration=1.5, reps=1,
                      processes=2, sides=["kit", "default"], drain_timeout=15.0),
        "layouts": dict(workloads=["cpu-0.25s"], loads=[0.5], sides=["kit", "default"], duration=1.5,
                        reps=1, drain_timeout=15.0),
        "throughput": dict(n=50, reps=1, timeout=30.0, attribution=False),
        "memory": dict(n=300, concurrency=2, chunk=100, backlog=200, time_cap=30.0),
    },
}
SMOKE_THROUGHPUT = ("kit", "celery-defaults", "celery-defaults-flower-attached", "tuned", "kit-appendfsync-always")
# The rows the report compares the kit with, besides Celery's defaults and the best grid point.
FLOWER_BASELINE = "celery-defaults-flower-attached"
FSYNC_ALWAYS = "kit-appendfsync-always"
TARGET_MIXED_FACTOR = 50
TARGET_VS_DEFAULTS = 1.0
TARGET_VS_BEST = 0.9
# Layout goals: the latency class's p95 at least 20x better than Celery's defaults from 80 % load
# on, every other class's p95 wait at most 1.25x the defaults' at every load.
GOAL_INSTANT = 20.0
GOAL_INSTANT_FROM_LOAD = 0.8
GOAL_OTHER = 1.25
SECTIONS = ("mixed", "throughput", "memory", "layouts")


def log(msg: str) -> None:
    print(msg, flush=True)


def ratio(a, b):
    return a / b if a is not None and b else None


def summarize_mixed(runs, params) -> dict:
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
    return {"processes": params["processes"], "kit_layout": mixed.LAYOUTS["kit"].what,
            "rate_instant_per_s": params["rate_instant"], "duration_s": params["duration"],
            "reps": params["reps"], "target": f"kit instant p95 <= default instant p95 / {TARGET_MIXED_FACTOR}",
            "by_rate": by_rate}


def summarize_throughput(summary, ceiling) -> dict:
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


def results_table(summary: dict) -> str:
    lines = []
    m = summary.get("mixed")
    if m:
        lines += [f"### Mixed load (N = {m['processes']} processes; kit: {m['kit_layout']}; instant tasks at "
                  f"{m['rate_instant_per_s']}/s; medians of {m['reps']} reps)",
                  "",
                  "| 1-s tasks/s | default instant p50 / p95 / max (s) | kit instant p50 / p95 / max (s) "
                  "| default ÷ kit (p95) | target ≥ 50× | long-task p95 wait default / kit (s) |",
                  "|---|---|---|---|---|---|"]
        for r in m["by_rate"]:
            d, k = r["default"], r["kit"]
            f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
            lines.append(f"| {r['rate_long_per_s']} | "
                         f"{f(d['instant_wait_p50_s'])} / {f(d['instant_wait_p95_s'])} / "
                         f"{f(d['instant_wait_max_s'])} | "
                         f"{f(k['instant_wait_p50_s'])} / {f(k['instant_wait_p95_s'])} / "
                         f"{f(k['instant_wait_max_s'])} | "
                         f"{r['instant_p95_default_over_kit'] or 0:.0f}× | "
                         f"{'met' if r['target_met'] else 'NOT met'} | "
                         f"{f(d['long_wait_p95_s'])} / {f(k['long_wait_p95_s'])} |")
        lines.append("")
    t = summary.get("throughput")
    if t:
        v = t["verdict"]
        lines += [f"### Short-task throughput (median tasks/s, end to end, 2 processes{_redis_heading(t)})", "",
                  "| configuration | tasks/s | × Celery defaults | Redis cmds/task | Redis ceiling (tasks/s) "
                  "| fraction of ceiling | CPU ms/task (worker+producer+redis) | what |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, row in t["configs"].items():
            g = lambda x, p=2: "n/a" if x is None else f"{x:.{p}f}"  # noqa: E731
            lines.append(f"| {name} | {g(row['tasks_per_s'], 0)} | {g(row['over_celery_defaults'])} | "
                         f"{g(row['redis_commands_per_task'], 1)} | {g(row['redis_ceiling_tasks_per_s'], 0)} | "
                         f"{g(row['fraction_of_redis_ceiling'])} | {_cpu(row)} | {row['what']} |")
        lines += ["", f"kit ÷ Celery defaults = {_x(v['kit_over_defaults'])} (target ≥ {TARGET_VS_DEFAULTS}: "
                  f"{'met' if v['target_vs_defaults_met'] else 'NOT met'}); kit ÷ best grid point "
                  f"({v['best_grid_point']}) = {_x(v['kit_over_best'])} (target ≥ {TARGET_VS_BEST}: "
                  f"{'met' if v['target_vs_best_met'] else 'NOT met'}).", "",
                  f"kit ÷ defaults with Flower attached ({FLOWER_BASELINE}) = "
                  f"{_x(v.get('kit_over_defaults_flower_attached'), FLOWER_BASELINE)}; "
                  f"kit with appendfsync always ÷ kit ({FSYNC_ALWAYS} ÷ kit) = "
                  f"{_x(v.get('kit_appendfsync_always_over_kit'), FSYNC_ALWAYS)}.", ""]
    mem = summary.get("memory")
    if mem:
        lines += [f"### Worker memory ({mem['tasks']} tasks keeping {mem['leak_bytes_per_task']} B each, "
                  f"{mem['concurrency']} processes; tasks done: {mem['tasks_done']})", "",
                  "| worker | idle RSS (MiB) | after (MiB) | peak (MiB) |", "|---|---|---|---|"]
        for name, side in mem["sides"].items():
            lines.append(f"| {name}: {side['what']} | {side['idle_rss_mib']:.1f} | {side['after_rss_mib']:.1f} | "
                         f"{side['peak_rss_mib'] or 0:.1f} |")
        lines.append("")
    lay = summary.get("layouts")
    if lay:
        lines += layouts_table(lay)
    return "\n".join(lines)


def layouts_table(lay: dict) -> list[str]:
    p, g = lay["params"], lay["goals"]
    f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    x = lambda v, d=0: "n/a" if v is None else f"{v:.{d}f}×"  # noqa: E731
    yes = lambda v: "–" if v is None else ("met" if v else "**NOT met**")  # noqa: E731
    lines = [f"### Worker layouts on three workloads (medians of {p['reps']} reps of {p['duration']:.0f} s; "
             f"goals: instant p95 ≥ {g['instant_p95_default_over_side_min']:.0f}× better than Celery's defaults "
             f"from {g['from_load']:.0%} load, slow-task p95 wait ≤ {g['long_p95_side_over_default_max']}× the "
             f"defaults')", "",
             f"Commit {lay.get('commit')}; load average at start {lay.get('load_avg_at_start')}, median 1-min load "
             f"average over the runs {lay.get('load_avg_1m_median')}; runs with QEMU VMs on the machine: "
             f"{lay.get('runs_with_vms_running')} of {lay.get('runs')}.", "",
             "| layout | workers (N = the workload's processes) |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in lay["layouts"].items()]
    lines.append("")
    for wname, w in lay["workloads"].items():
        sides = [k for k in p["sides"] if k != "default"]
        lines += [f"#### {wname}: {w['what']}", "",
                  "| load | slow/s | instant/s | layout | instant p95 (s) | ÷ default | instant goal "
                  "| slow p95 wait (s) | × default | slow goal | worker CPU s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in w["by_load"]:
            d = row["sides"]["default"]
            head = f"| {row['load']:.0%} | {row['rate_long_per_s']:.2f} | {row['rate_instant_per_s']:.2f}"
            lines.append(f"{head} | default | {f(d['instant_wait_p95_s'])} | | | {f(d['long_wait_p95_s'])} | | | "
                         f"{f(d['worker_cpu_s'])} |")
            for side in sides:
                m = row["sides"][side]
                lines.append(f"| | | | {side} | {f(m['instant_wait_p95_s'])} | "
                             f"{x(m['instant_p95_default_over_side'])} | "
                             f"{yes(m['instant_goal'])} | {f(m['long_wait_p95_s'])} | "
                             f"{x(m['long_p95_side_over_default'], 2)} | {yes(m['long_goal'])} | "
                             f"{f(m['worker_cpu_s'])} |")
        lines.append("")
    return lines


def _x(value, row: str | None = None) -> str:
    """A ratio to two decimals, or why there is none (the row was not part of the run)."""
    if value is not None:
        return f"{value:.2f}"
    return f"n/a (no {row} row in this run)" if row else "n/a"


def _redis_heading(t: dict) -> str:
    """The redis-server persistence every row ran with (the rows that differ say so themselves)."""
    kit = (t["configs"].get("kit") or {}).get("redis")
    if not kit:
        return ""
    text = ", ".join(f"{k} {v}" for k, v in kit.items())
    differ = [name for name, row in t["configs"].items() if row.get("redis") != kit]
    return f"; Redis {text}" + (f", except {', '.join(differ)}" if differ else "") + "; no RDB snapshots"


def _cpu(row) -> str:
    cpu = row.get("cpu_ms_per_task")
    if not cpu:
        return "n/a"
    return f"{sum(cpu.values()):.2f} ({cpu['worker']:.2f}+{cpu['producer']:.2f}+{cpu['redis']:.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny version (CI): seconds, no timing targets")
    parser.add_argument("--only", default=None,
                        help="comma-separated sections (default: mixed,throughput,memory; with --smoke all four)")
    parser.add_argument("--layout-sides", default=None, help="layouts section: comma-separated layouts "
                        f"(at most 5, must include default and kit; known: {','.join(mixed.LAYOUTS)})")
    parser.add_argument("--layout-workloads", default=None,
                        help=f"layouts section: comma-separated workloads (known: {','.join(mixed.WORKLOADS)})")
    parser.add_argument("--layout-loads", default=None, help="layouts section: comma-separated offered loads")
    parser.add_argument("--layout-reps", type=int, default=None)
    parser.add_argument("--pause-for-vms", type=float, default=0.0,
                        help="mixed and layouts sections: seconds each may wait in all, polling every 30 s, "
                             "while QEMU VMs run on this machine "
                             "(each run records whether VMs ran and the load average)")
    parser.add_argument("--throughput-configs", default=None,
                        help="throughput section: comma-separated configurations, in this order (must include "
                             f"kit and celery-defaults; known: {','.join(c.name for c in throughput.configs())})")
    parser.add_argument("--memory-time-cap", type=float, default=None,
                        help="seconds the memory benchmark may run (default 300; it stops at 100,000 tasks); "
                             "with make bench, raise BENCH_TIMEOUT too")
    parser.add_argument("--results", type=Path, default=None,
                        help="output folder (default bench/results, or bench/results/tmp with --smoke)")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "full"]
    only_arg = args.only or ("mixed,throughput,memory,layouts" if args.smoke else "mixed,throughput,memory")
    only = {x.strip() for x in only_arg.split(",") if x.strip()}
    if only - set(SECTIONS):
        parser.error(f"unknown section(s) {sorted(only - set(SECTIONS))}; known: {', '.join(SECTIONS)}")
    throughput_names = None
    if args.throughput_configs:
        throughput_names = [x.strip() for x in args.throughput_configs.split(",") if x.strip()]
        if not {"kit", "celery-defaults"} <= set(throughput_names):
            parser.error("--throughput-configs must include kit and celery-defaults")
        try:
            throughput.configs(names=throughput_names)
        except ValueError as exc:
            parser.error(str(exc))
    out_dir = args.results or (harness.ROOT / "bench" / "results" / ("tmp" if args.smoke else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary = {"profile": "smoke" if args.smoke else "full",
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
               "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                           "celery": __import__("celery").__version__, "load_avg_at_start": [round(x, 2) for x in
                                                                     __import__("os").getloadavg()]},
               "commit": _git_commit(),
               "kit_worker_flags": list(harness.kit_worker_args())}

    def dump(name, data):
        (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")

    with harness.session(out_dir / "tmp" / "logs" if not args.smoke else None) as s:
        log(f"bench: redis-server on 127.0.0.1:{s.port}, logs in {s.log_dir}")
        ceiling = s.redis_benchmark(profile["redis_benchmark_requests"])
        summary["redis_benchmark"] = ceiling
        log(f"redis-benchmark: median {ceiling.get('median_ops_per_s') or 0:.0f} ops/s {ceiling.get('ops_per_s')}")

        mixed._pause_budget["left"] = args.pause_for_vms
        if "mixed" in only:
            p = profile["mixed"]
            log("== 1. mixed load")
            runs = mixed.run(s, log=log, **p)
            summary["mixed"] = summarize_mixed(runs, p)
            dump("mixed", {"started_utc": summary["started_utc"], "params": p, "summary": summary["mixed"],
                           "runs": runs})
            plots.mixed(summary["mixed"], out_dir / "mixed_latency_vs_load.png")

        if "throughput" in only:
            p = dict(profile["throughput"])
            if throughput_names is not None:
                p["names"] = throughput_names
            log("== 2. short-task throughput")
            redis_dir = harness.filesystem(s.log_dir)
            log(f"redis-server AOF in {redis_dir['path']} ({redis_dir['fstype']} on {redis_dir['device']})")
            if redis_dir["fstype"] in ("tmpfs", "ramfs"):
                log("  warning: the AOF is on a RAM filesystem, where fsync costs nothing: appendfsync rows "
                    "do not measure a disk")
            cfgs, runs, tsum = throughput.run(s, log=log, **p) if not args.smoke else \
                _smoke_throughput(s, p)
            verdict = summarize_throughput(tsum, ceiling)
            summary["throughput"] = {"verdict": verdict, "configs": tsum}
            dump("throughput", {"started_utc": summary["started_utc"], "params": p, "redis_benchmark": ceiling,
                                "redis_dir": redis_dir, "verdict": verdict,
                                "configs": tsum, "runs": runs})
            plots.throughput(tsum, out_dir / "throughput.png")

        if "layouts" in only:
            p = dict(profile["layouts"])
            if args.layout_sides:
                p["sides"] = [x.strip() for x in args.layout_sides.split(",") if x.strip()]
            if args.layout_workloads:
                p["workloads"] = [x.strip() for x in args.layout_workloads.split(",") if x.strip()]
            if args.layout_loads:
                p["loads"] = [float(x) for x in args.layout_loads.split(",") if x.strip()]
            if args.layout_reps:
                p["reps"] = args.layout_reps
            p["pause_for_vms"] = args.pause_for_vms
            if "default" not in p["sides"] or "kit" not in p["sides"]:
                parser.error("--layout-sides must include default and kit")
            log("== 4. worker layouts")
            started_l = time.time()
            runs = mixed.run_layouts(s, log=log, **p)
            summary["layouts"] = mixed.summarize_layouts(runs, p, GOAL_INSTANT, GOAL_OTHER, GOAL_INSTANT_FROM_LOAD)
            summary["layouts"]["elapsed_s"] = round(time.time() - started_l, 1)
            summary["layouts"]["load_avg_at_start"] = summary["machine"]["load_avg_at_start"]
            summary["layouts"]["commit"] = summary["commit"]
            dump("layouts", {"started_utc": summary["started_utc"], "summary": summary["layouts"], "runs": runs})
            plots.layouts(summary["layouts"], out_dir)

        if "memory" in only:
            p = dict(profile["memory"])
            if args.memory_time_cap:
                p["time_cap"] = args.memory_time_cap
            log("== 3. memory")
            res = memory.run(s, log=log, **p)
            summary["memory"] = {k: v for k, v in res.items() if k != "samples"}
            dump("memory", {"started_utc": summary["started_utc"], "params": p, **res})
            plots.memory(res, out_dir / "memory.png")

    summary["elapsed_s"] = round(time.time() - started, 1)
    # A partial run (--only) keeps the other sections of the last recorded run, labelled as such.
    for section in sorted(set(SECTIONS) - only):
        path = out_dir / f"{section}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        summary[section] = {"mixed": lambda d: d["summary"],
                            "throughput": lambda d: {"verdict": d["verdict"], "configs": d["configs"]},
                            "memory": lambda d: {k: v for k, v in d.items() if k not in ("samples", "params")},
                            "layouts": lambda d: d["summary"],
                            }[section](data)
        summary.setdefault("sections_from_earlier_run", {})[section] = data.get("started_utc")
    dump("summary", summary)
    (out_dir / "RESULTS.md").write_text(results_table(summary) + "\n")
    _print_ratios(summary)
    log(f"bench: done in {summary['elapsed_s']:.0f}s; results in {out_dir}")
    return 0


def _smoke_throughput(s, p):
    """One run of each smoke configuration (``p["names"]``, else ``SMOKE_THROUGHPUT``)."""
    cfgs = throughput.configs(names=p.get("names") or list(SMOKE_THROUGHPUT))
    runs = []
    with throughput.redis_restored(s, cfgs):
        for cfg in cfgs:
            res = throughput.run_once(s, cfg, p["n"], p["timeout"])
            res["rep"] = 0
            runs.append(res)
    return cfgs, runs, throughput.summarize(cfgs, runs)


def _git_commit() -> str | None:
    import subprocess
    try:
        out = subprocess.run(["git", "-C", str(harness.ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(harness.ROOT), "status", "--porcelain", "--", "bench",
                                "celeryconfig"], capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+uncommitted bench/celeryconfig changes" if dirty else "") or None
    except (OSError, subprocess.SubprocessError):
        return None


def _print_ratios(summary) -> None:
    log("\n== ratios" + (" (smoke run: numbers are meaningless)" if summary["profile"] == "smoke" else ""))
    m = summary.get("mixed")
    if m:
        for r in m["by_rate"]:
            log(f"mixed  1-s tasks {r['rate_long_per_s']}/s: instant p95 default "
                f"{r['default']['instant_wait_p95_s'] or 0:.3f}s / kit {r['kit']['instant_wait_p95_s'] or 0:.4f}s"
                f" = {r['instant_p95_default_over_kit'] or 0:.0f}x (target >= {TARGET_MIXED_FACTOR}x: "
                f"{'met' if r['target_met'] else 'NOT met'})")
    t = summary.get("throughput")
    if t:
        v = t["verdict"]
        log(f"throughput kit {v['kit_tasks_per_s'] or 0:.0f}/s vs Celery defaults "
            f"{v['celery_defaults_tasks_per_s'] or 0:.0f}/s = {v['kit_over_defaults'] or 0:.2f}x "
            f"(target >= {TARGET_VS_DEFAULTS}: {'met' if v['target_vs_defaults_met'] else 'NOT met'})")
        log(f"throughput kit vs best grid point {v['best_grid_point']} {v['best_grid_tasks_per_s'] or 0:.0f}/s"
            f" = {v['kit_over_best'] or 0:.2f}x (target >= {TARGET_VS_BEST}: "
            f"{'met' if v['target_vs_best_met'] else 'NOT met'})")
        flower = v.get("celery_defaults_flower_attached_tasks_per_s")
        log(f"throughput kit vs defaults with Flower attached ({FLOWER_BASELINE}) "
            + ("n/a: not in this run" if flower is None else
               f"{flower:.0f}/s = {_x(v['kit_over_defaults_flower_attached'])}x"))
        always = v.get("kit_appendfsync_always_tasks_per_s")
        log(f"throughput kit with appendfsync always ({FSYNC_ALWAYS}) vs kit "
            + ("n/a: not in this run" if always is None else
               f"{always:.0f}/s = {_x(v['kit_appendfsync_always_over_kit'])}x"))
        for name, row in t["configs"].items():
            log(f"  {name:31s} {row['tasks_per_s'] or 0:6.0f}/s  x{row['over_celery_defaults'] or 0:.2f} defaults"
                f"  {row['redis_commands_per_task']:.1f} cmds/task  {_cpu(row)} CPU ms/task  "
                f"{(row['fraction_of_redis_ceiling'] or 0) * 100:.1f}% of Redis ceiling")
    lay = summary.get("layouts")
    if lay:
        for wname, w in lay["workloads"].items():
            for row in w["by_load"]:
                for side, m in row["sides"].items():
                    if side == "default":
                        continue
                    log(f"layouts {wname:10s} load {row['load']:.0%} {side:11s} instant p95 "
                        f"{m['instant_wait_p95_s'] or 0:.4f}s = {m['instant_p95_default_over_side'] or 0:.0f}x better "
                        f"(goal {'-' if m['instant_goal'] is None else 'met' if m['instant_goal'] else 'NOT met'}); "
                        f"slow p95 wait {m['long_wait_p95_s'] or 0:.3f}s = {m['long_p95_side_over_default'] or 0:.2f}x "
                        f"default's (goal {'met' if m['long_goal'] else 'NOT met'})")
    mem = summary.get("memory")
    if mem:
        for name, side in mem["sides"].items():
            log(f"memory {name:9s} idle {side['idle_rss_mib']:.1f} MiB -> after {mem['tasks_done'][name]} tasks "
                f"{side['after_rss_mib']:.1f} MiB (peak {side['peak_rss_mib'] or 0:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
