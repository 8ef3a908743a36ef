"""Everything a run's results are rendered into: ``RESULTS.md``, the ratios printed at the end of a
run, and the generated blocks of the docs.

``python -m bench`` writes ``RESULTS.md`` (``results_table``) and prints the ratios
(``print_ratios``). ``python -m bench.report [--results DIR]`` prints the compact layout table.
``python -m bench.report --update FILE...`` rewrites, in each FILE, every block between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` with the generated table NAME;
``--check FILE...`` only says which files have a block that differs (exit status 1):

- ``layouts-SIDE`` (``layouts-kit``, ``layouts-split``, ...): Celery's defaults against one layout, per
  workload and load (compact);
- ``layouts-all``: the full per-layout tables of ``RESULTS.md``;
- ``mixed``: the mixed-load table of ``RESULTS.md``;
- ``throughput``: the short-task throughput table of ``RESULTS.md``, with the kit's ratios under it;
- ``memory``: the worker memory table of ``RESULTS.md``;
- ``headline-mixed``: one row for README.md's summary table;
- ``headline-throughput``: the kit's throughput against Celery's defaults with and without what
  Flower turns on, and the cost of ``appendfsync always``.
So README.md, bench/README.md and docs/operations.md quote the recorded run, never hand-typed numbers.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .mixed import LAYOUTS, TARGET_MIXED_FACTOR
from .throughput import FLOWER_BASELINE, FSYNC_ALWAYS, TARGET_VS_BEST, TARGET_VS_DEFAULTS

RESULTS = Path(__file__).parent / "results"
DOCS_BLOCK = re.compile(r"(<!-- bench:([a-z-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _times(value, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}×"


def _goal(met) -> str:
    return "–" if met is None else ("met" if met else "**NOT met**")


def results_table(summary: dict) -> str:
    """RESULTS.md: one table per section of ``summary`` (the run's ``summary.json``)."""
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
            lines.append(f"| {r['rate_long_per_s']} | "
                         f"{_number(d['instant_wait_p50_s'])} / {_number(d['instant_wait_p95_s'])} / "
                         f"{_number(d['instant_wait_max_s'])} | "
                         f"{_number(k['instant_wait_p50_s'])} / {_number(k['instant_wait_p95_s'])} / "
                         f"{_number(k['instant_wait_max_s'])} | "
                         f"{r['instant_p95_default_over_kit'] or 0:.0f}× | "
                         f"{'met' if r['target_met'] else 'NOT met'} | "
                         f"{_number(d['long_wait_p95_s'])} / {_number(k['long_wait_p95_s'])} |")
        lines.append("")
    t = summary.get("throughput")
    if t:
        v = t["verdict"]
        lines += [f"### Short-task throughput (median tasks/s, end to end, 2 processes{_redis_heading(t)})", "",
                  "| configuration | tasks/s | × Celery defaults | Redis cmds/task | Redis ceiling (tasks/s) "
                  "| fraction of ceiling | CPU ms/task (worker+producer+redis) | what |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, row in t["configs"].items():
            lines.append(f"| {name} | {_number(row['tasks_per_s'], 0)} | "
                         f"{_number(row['over_celery_defaults'], 2)} | "
                         f"{_number(row['redis_commands_per_task'], 1)} | "
                         f"{_number(row['redis_ceiling_tasks_per_s'], 0)} | "
                         f"{_number(row['fraction_of_redis_ceiling'], 2)} | {_cpu_per_task(row)} | {row['what']} |")
        lines += ["", f"kit ÷ Celery defaults = {_ratio_or_why(v['kit_over_defaults'])} "
                  f"(target ≥ {TARGET_VS_DEFAULTS}: "
                  f"{'met' if v['target_vs_defaults_met'] else 'NOT met'}); kit ÷ best grid point "
                  f"({v['best_grid_point']}) = {_ratio_or_why(v['kit_over_best'])} (target ≥ {TARGET_VS_BEST}: "
                  f"{'met' if v['target_vs_best_met'] else 'NOT met'}).", "",
                  f"kit ÷ defaults with Flower attached ({FLOWER_BASELINE}) = "
                  f"{_ratio_or_why(v.get('kit_over_defaults_flower_attached'), FLOWER_BASELINE)}; "
                  f"kit with appendfsync always ÷ kit ({FSYNC_ALWAYS} ÷ kit) = "
                  f"{_ratio_or_why(v.get('kit_appendfsync_always_over_kit'), FSYNC_ALWAYS)}.", ""]
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
    """Section 4 of RESULTS.md: the layouts, then one table per workload with every layout."""
    p, g = lay["params"], lay["goals"]
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
            lines.append(f"{head} | default | {_number(d['instant_wait_p95_s'])} | | | "
                         f"{_number(d['long_wait_p95_s'])} | | | {_number(d['worker_cpu_s'])} |")
            for side in sides:
                m = row["sides"][side]
                lines.append(f"| | | | {side} | {_number(m['instant_wait_p95_s'])} | "
                             f"{_times(m['instant_p95_default_over_side'])} | "
                             f"{_goal(m['instant_goal'])} | {_number(m['long_wait_p95_s'])} | "
                             f"{_times(m['long_p95_side_over_default'], 2)} | {_goal(m['long_goal'])} | "
                             f"{_number(m['worker_cpu_s'])} |")
        lines.append("")
    return lines


def _ratio_or_why(value, row: str | None = None) -> str:
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


def _cpu_per_task(row) -> str:
    cpu = row.get("cpu_ms_per_task")
    if not cpu:
        return "n/a"
    return f"{sum(cpu.values()):.2f} ({cpu['worker']:.2f}+{cpu['producer']:.2f}+{cpu['redis']:.2f})"


def print_ratios(summary: dict, log) -> None:
    """The run's ratios against the targets, one line each, through ``log``."""
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
               f"{flower:.0f}/s = {_ratio_or_why(v['kit_over_defaults_flower_attached'])}x"))
        always = v.get("kit_appendfsync_always_tasks_per_s")
        log(f"throughput kit with appendfsync always ({FSYNC_ALWAYS}) vs kit "
            + ("n/a: not in this run" if always is None else
               f"{always:.0f}/s = {_ratio_or_why(v['kit_appendfsync_always_over_kit'])}x"))
        for name, row in t["configs"].items():
            log(f"  {name:31s} {row['tasks_per_s'] or 0:6.0f}/s  x{row['over_celery_defaults'] or 0:.2f} defaults"
                f"  {row['redis_commands_per_task']:.1f} cmds/task  {_cpu_per_task(row)} CPU ms/task  "
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


def compact_layouts_table(lay: dict, side: str = "kit") -> list[str]:
    """One row per workload and load: Celery's defaults against one layout, both classes."""
    g = lay["goals"]
    lines = [f"| workload | load | instant p95 default → {side} (s) | better by (goal ≥ "
             f"{g['instant_p95_default_over_side_min']:.0f}× from {g['from_load']:.0%}) | slow p95 wait default → "
             f"{side} (s) | ratio (goal ≤ {g['long_p95_side_over_default_max']}×) | worker CPU s default / {side} |",
             "|---|---|---|---|---|---|---|"]
    for wname, w in lay["workloads"].items():
        for row in w["by_load"]:
            d, m = row["sides"]["default"], row["sides"][side]
            inst, other = m["instant_p95_default_over_side"], m["long_p95_side_over_default"]
            lines.append(f"| {wname} | {row['load']:.0%} | "
                         f"{_number(d['instant_wait_p95_s'])} → {_number(m['instant_wait_p95_s'])} | "
                         f"{_times(inst)} {_goal(m['instant_goal'])} | "
                         f"{_number(d['long_wait_p95_s'])} → {_number(m['long_wait_p95_s'])} | "
                         f"{_times(other, 2)} {_goal(m['long_goal'])} | "
                         f"{_number(d['worker_cpu_s'])} / {_number(m['worker_cpu_s'])} |")
    return lines


def _provenance(data: dict, lay: dict | None = None, results: Path | None = None) -> str:
    lay = lay or {}
    machine = data.get("machine") or {}
    if results is not None and not machine and (results / "summary.json").exists():
        summary = json.loads((results / "summary.json").read_text())
        if summary.get("started_utc") == data.get("started_utc"):  # the section came from that run
            machine, data = summary.get("machine") or {}, {**summary, **data}
    parts = []
    commit = lay.get("commit") or data.get("commit")
    if commit:
        parts.append(f"commit {commit}")
    load = lay.get("load_avg_at_start") or machine.get("load_avg_at_start")
    if load:
        parts.append(f"load average at start {load}")
    if "runs" in lay:
        parts.append(f"median 1-min load average over the runs {lay['load_avg_1m_median']}; runs with VMs on "
                     f"the machine: {lay['runs_with_vms_running']} of {lay['runs']}")
    return (f"Generated by `python -m bench.report` from the run started {data.get('started_utc')}"
            + (f" ({'; '.join(parts)})" if parts else "") + ".")


def _results_section(results: Path, heading: str) -> list[str]:
    """The block of RESULTS.md that starts with a line beginning with ``heading``."""
    text = (results / "RESULTS.md").read_text().splitlines()
    out, inside = [], False
    for line in text:
        if line.startswith(heading):
            inside = True
        elif inside and line.startswith("### "):
            break
        if inside:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def data_started(results: Path, section: str) -> str:
    return json.loads((results / f"{section}.json").read_text()).get("started_utc", "?")


def block(name: str, results: Path) -> list[str]:
    if name.startswith("layouts"):
        data = json.loads((results / "layouts.json").read_text())
        lay = data["summary"]
        if name == "layouts-all":
            return [_provenance(data, lay), "", *_results_section(results, "### Worker layouts")]
        side = name.removeprefix("layouts-")
        if side in lay["params"]["sides"] and side != "default":
            return [_provenance(data, lay), "", *compact_layouts_table(lay, side)]
        if side in LAYOUTS:
            return [f"*The recorded run (started {data.get('started_utc')}) compared "
                    f"{', '.join(lay['params']['sides'])}; `{side}` was not among them "
                    f"(`make bench-layouts` runs it; `--layout-sides` chooses).*"]
    if name == "mixed":
        data = json.loads((results / "mixed.json").read_text())
        return [_provenance(data, results=results), "", *_results_section(results, "### Mixed load")]
    if name == "throughput":
        data = json.loads((results / "throughput.json").read_text())
        return [_provenance(data, results=results), "", *_results_section(results, "### Short-task throughput")]
    if name == "memory":
        data = json.loads((results / "memory.json").read_text())
        return [_provenance(data, results=results), "", *_results_section(results, "### Worker memory")]
    if name == "headline-throughput":
        t = json.loads((results / "throughput.json").read_text())
        v, c = t["verdict"], t["configs"]

        def rate(config: str) -> str:
            value = (c.get(config) or {}).get("tasks_per_s")
            return "n/a" if value is None else f"{value:.0f}"

        def cpu(config: str) -> str:
            ms = (c.get(config) or {}).get("cpu_ms_per_task") or {}
            return "n/a" if not ms else f"{sum(ms.values()):.2f} ms"

        return [f"| short no-op tasks per second, 2 processes (run {t.get('started_utc')}) | tasks/s | CPU per task "
                "| kit ÷ this row |",
                "|---|---|---|---|",
                f"| Celery defaults | {rate('celery-defaults')} | {cpu('celery-defaults')} "
                f"| {_times(v.get('kit_over_defaults'), 2)} |",
                "| Celery defaults with what Flower turns on (task events) "
                f"| {rate('celery-defaults-flower-attached')} | {cpu('celery-defaults-flower-attached')} "
                f"| {_times(v.get('kit_over_defaults_flower_attached'), 2)} |",
                f"| kit as shipped | {rate('kit')} | {cpu('kit')} | 1.00× |",
                f"| kit without any task event (not deployable: Flower needs them) | {rate('kit-no-task-events')} "
                f"| {cpu('kit-no-task-events')} | |",
                f"| kit with `appendfsync always` | {rate('kit-appendfsync-always')} | {cpu('kit-appendfsync-always')} "
                f"| this row ÷ kit: {_times(v.get('kit_appendfsync_always_over_kit'), 2)} |",
                f"| best hand-tuned grid point (`{v.get('best_grid_point')}`) | {rate(v.get('best_grid_point') or '')} "
                f"| {cpu(v.get('best_grid_point') or '')} | {_times(v.get('kit_over_best'), 2)} |"]
    if name == "headline-mixed":
        m = json.loads((results / "mixed.json").read_text())["summary"]
        rates = " / ".join(str(r["rate_long_per_s"]) for r in m["by_rate"])
        d = " / ".join(_number(r["default"]["instant_wait_p95_s"]) for r in m["by_rate"])
        k = " / ".join(_number(r["kit"]["instant_wait_p95_s"]) for r in m["by_rate"])
        x = " / ".join(f"{r['instant_p95_default_over_kit'] or 0:.0f}×" for r in m["by_rate"])
        dl = " / ".join(_number(r["default"]["long_wait_p95_s"]) for r in m["by_rate"])
        kl = " / ".join(_number(r["kit"]["long_wait_p95_s"]) for r in m["by_rate"])
        lr = " / ".join("n/a" if not r["default"]["long_wait_p95_s"] else
                        f"{r['kit']['long_wait_p95_s'] / r['default']['long_wait_p95_s']:.2f}×" for r in m["by_rate"])
        kl_what = m["kit_layout"]
        if isinstance(kl_what, dict):  # runs before the layout change recorded the split as numbers
            kl_what = f"kit as recorded then: high {kl_what['high']} + long {kl_what['long']} processes"
        return [f"| mixed load, 4 processes (run {data_started(results, 'mixed')}) | Celery defaults | {kl_what} | |",
                "|---|---|---|---|",
                f"| instant-task p95 behind 1-second tasks, at {rates} slow tasks per second | {d} s | {k} s | "
                f"{x} better |",
                f"| 1-second tasks' p95 wait, same rates | {dl} s | {kl} s | kit ÷ defaults: {lr} |"]
    raise KeyError(name)


def render(text: str, results: Path) -> str:
    """``text`` with every generated block regenerated from ``results``."""
    def sub(m):
        try:
            lines = block(m.group(2), results)
        except FileNotFoundError as exc:
            lines = [f"*No recorded run in {Path(exc.filename).parent.name}/ yet ({Path(exc.filename).name}): run "
                     "the benchmark on a quiet machine, then `python -m bench.report --update` this file.*"]
        return m.group(1) + "\n".join(lines) + "\n" + m.group(4)
    return DOCS_BLOCK.sub(sub, text)


def update(path: Path, results: Path) -> int:
    """Regenerate the blocks of the file ``path``; how many it has."""
    text = path.read_text()
    path.write_text(render(text, results))
    return len(DOCS_BLOCK.findall(text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--update", nargs="*", type=Path, default=None)
    parser.add_argument("--check", nargs="*", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.update is not None:
        for path in args.update:
            print(f"{path}: {update(path, args.results)} block(s) regenerated")
        return 0
    if args.check is not None:
        stale = [path for path in args.check if render(path.read_text(), args.results) != path.read_text()]
        for path in stale:
            print(f"{path}: generated block(s) differ from {args.results}; run python -m bench.report --update {path}")
        return 1 if stale else 0
    print("\n".join(block("layouts-kit", args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
