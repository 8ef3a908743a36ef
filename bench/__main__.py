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

from . import harness, memory, mixed, plots, report, throughput

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
SECTIONS = ("mixed", "throughput", "memory", "layouts")


def log(msg: str) -> None:
    print(msg, flush=True)


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
            summary["mixed"] = mixed.summarize(runs, p)
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
            verdict = throughput.verdict(tsum, ceiling)
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
            summary["layouts"] = mixed.summarize_layouts(runs, p, mixed.GOAL_INSTANT, mixed.GOAL_OTHER,
                                                         mixed.GOAL_INSTANT_FROM_LOAD)
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
    (out_dir / "RESULTS.md").write_text(report.results_table(summary) + "\n")
    report.print_ratios(summary, log)
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


if __name__ == "__main__":
    sys.exit(main())
