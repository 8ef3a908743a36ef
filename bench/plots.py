"""PNG plots of the three benchmarks (matplotlib, no display)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"kit": "tab:green", "default": "tab:red"}


def mixed(summary: dict, path: Path) -> None:
    rows = summary["by_rate"]
    rates = [r["rate_long_per_s"] for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for side in ("kit", "default"):
        for key, style in (("instant_wait_p95_s", "-o"), ("instant_wait_p50_s", "--.")):
            vals = [max(r[side][key] or 1e-4, 1e-4) for r in rows]
            ax.plot(rates, vals, style, color=COLORS[side], label=f"{side} {key.split('_')[2]}")
        ax2.plot(rates, [r[side]["long_wait_p95_s"] or 0 for r in rows], "-o", color=COLORS[side],
                 label=f"{side} p95")
    ax.set_yscale("log")
    ax.set_xlabel("1-second tasks per s (instant tasks at " f"{summary['rate_instant_per_s']}/s)")
    ax.set_ylabel("wait of instant tasks (s, log)")
    ax.set_title(f"Instant tasks, {summary['processes']} processes in total (medians)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax2.set_xlabel("1-second tasks per s")
    ax2.set_ylabel("wait of 1-second tasks (s)")
    ax2.set_title("1-second tasks (kit: all N processes on long + a solo worker on high)", fontsize=10)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


LAYOUT_STYLE = {"kit": ("tab:green", "-o"), "default": ("tab:red", "-s"), "split": ("tab:purple", "--^"),
                "shared": ("tab:orange", "--v"), "shared-solo": ("tab:blue", "--D"),
                "kit-prefetch2": ("tab:cyan", ":s"), "kit-threads": ("tab:olive", ":x")}


def layouts(summary: dict, out_dir: Path) -> list[Path]:
    """One PNG per workload: latency class p95 (log) and slow class p95 wait against offered load."""
    paths = []
    g = summary["goals"]
    for wname, w in summary["workloads"].items():
        rows = w["by_load"]
        loads = [r["load"] * 100 for r in rows]
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        for side in summary["params"]["sides"]:
            color, style = LAYOUT_STYLE.get(side, ("black", "-"))
            ax.plot(loads, [max(r["sides"][side]["instant_wait_p95_s"] or 1e-4, 1e-4) for r in rows], style,
                    color=color, label=side)
            ax2.plot(loads, [r["sides"][side]["long_wait_p95_s"] or 0 for r in rows], style, color=color,
                     label=side)
        d_inst = [r["sides"]["default"]["instant_wait_p95_s"] for r in rows]
        ax.plot(loads, [v / g["instant_p95_default_over_side_min"] if v else None for v in d_inst], ":",
                color="grey", label=f"goal: default ÷ {g['instant_p95_default_over_side_min']:.0f}")
        d_long = [r["sides"]["default"]["long_wait_p95_s"] or 0 for r in rows]
        ax2.plot(loads, [v * g["long_p95_side_over_default_max"] for v in d_long], ":", color="grey",
                 label=f"limit: default × {g['long_p95_side_over_default_max']}")
        ax.set_yscale("log")
        ax.set_xlabel("offered load of the slow tasks (% of N processes)")
        ax.set_ylabel("instant-task p95 wait (s, log)")
        ax.set_title(f"{wname}: latency class", fontsize=10)
        ax2.set_xlabel("offered load of the slow tasks (% of N processes)")
        ax2.set_ylabel("slow-task p95 wait (s)")
        ax2.set_title(f"{wname}: slow class (N = {w['processes']})", fontsize=10)
        for a in (ax, ax2):
            a.grid(True, which="both", alpha=0.3)
            a.legend(fontsize=8)
        fig.suptitle(w["what"] + f"; medians of {summary['params']['reps']}", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"layouts_{wname}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def throughput(summary: dict, path: Path) -> None:
    names = list(summary)
    vals = [summary[n]["tasks_per_s"] or 0 for n in names]
    colors = [{"kit": "tab:green", "default": "tab:red", "grid": "tab:blue", "attribution": "tab:olive"}
              [summary[n]["group"]] for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    ax.barh(names, vals, color=colors)
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("tasks/s (median, end to end)")
    ax.set_title("Short-task throughput (green: kit, red: Celery defaults, blue: grid, olive: kit variants)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def memory(result: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, color in (("kit", "tab:green"), ("no-limits", "tab:red")):
        xs = [smp[name]["done"] for smp in result["samples"]]
        ys = [smp[name]["rss_kib"] / 1024 for smp in result["samples"]]
        ax.plot(xs, ys, color=color, label=f"{name}: {result['sides'][name]['what']}")
    ax.set_xlabel("tasks done")
    ax.set_ylabel("worker RSS, main + children (MiB)")
    ax.set_title(f"Worker memory, {result['leak_bytes_per_task']} B kept per task, "
                 f"{result['concurrency']} processes")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replot(results: Path) -> None:
    """Redraw every PNG from the JSON files of a results folder."""
    import json
    if (results / "mixed.json").exists():
        mixed(json.loads((results / "mixed.json").read_text())["summary"], results / "mixed_latency_vs_load.png")
    if (results / "throughput.json").exists():
        throughput(json.loads((results / "throughput.json").read_text())["configs"], results / "throughput.png")
    if (results / "layouts.json").exists():
        layouts(json.loads((results / "layouts.json").read_text())["summary"], results)
    if (results / "memory.json").exists():
        memory(json.loads((results / "memory.json").read_text()), results / "memory.png")


if __name__ == "__main__":
    import sys
    replot(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results")
