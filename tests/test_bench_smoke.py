"""The benchmark code keeps working: ``python -m bench --smoke`` runs and writes complete JSON.

No timing is asserted (CI machines are noisy); the full run is ``make bench``.
"""
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import procs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-smoke")
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--results", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return out, proc.stdout


def load(out, name):
    return json.loads((out / f"{name}.json").read_text())


def test_prints_the_ratios(smoke):
    _, stdout = smoke
    assert "== ratios" in stdout
    assert "throughput kit" in stdout and "instant p95" in stdout


def test_mixed_reports_instant_wait_percentiles_for_both_sides(smoke):
    out, _ = smoke
    mixed = load(out, "mixed")
    row = mixed["summary"]["by_rate"][0]
    for side in ("kit", "default"):
        for key in ("instant_wait_p50_s", "instant_wait_p95_s", "instant_wait_max_s", "long_wait_p95_s"):
            assert isinstance(row[side][key], float), (side, key)
    assert "instant_p95_default_over_kit" in row
    sides = {run["side"] for run in mixed["runs"]}
    assert sides == {"kit", "default"}
    assert all(run["instant_started"] == run["instant_sent"] > 0 for run in mixed["runs"])
    assert (out / "mixed_latency_vs_load.png").stat().st_size > 0


def test_throughput_reports_tasks_per_s_and_redis_ceiling(smoke):
    out, _ = smoke
    tp = load(out, "throughput")
    for name in ("kit", "celery-defaults"):
        row = tp["configs"][name]
        assert row["tasks_per_s"] > 0
        assert row["redis_commands_per_task"] > 1
        assert 0 < row["fraction_of_redis_ceiling"]
    for key in ("kit_over_defaults", "kit_over_best", "best_grid_point"):
        assert key in tp["verdict"]
    # The fair baseline and the durable Redis option, each as a ratio against the kit.
    assert tp["verdict"]["kit_over_defaults_flower_attached"] > 0
    assert tp["verdict"]["kit_appendfsync_always_over_kit"] > 0
    assert tp["configs"]["kit"]["redis"] == {"appendonly": "yes", "appendfsync": "everysec"}
    assert tp["configs"]["kit-appendfsync-always"]["redis"] == {"appendonly": "yes", "appendfsync": "always"}
    flower = [r for r in tp["runs"] if r["config"] == "celery-defaults-flower-attached"]
    assert flower and all("--task-events" in r["worker_flags"] for r in flower)
    assert tp["redis_benchmark"]["median_ops_per_s"] > 0
    assert (out / "throughput.png").stat().st_size > 0


def test_memory_reports_idle_and_after_rss_with_and_without_limits(smoke):
    out, _ = smoke
    mem = load(out, "memory")
    assert mem["finished"]
    for side in ("kit", "no-limits"):
        assert mem["sides"][side]["idle_rss_mib"] > 10
        assert mem["sides"][side]["after_rss_mib"] > 10
        assert mem["sides"][side]["idle"]["children_kib"], "pool children are counted"
    assert (out / "memory.png").stat().st_size > 0


def test_layouts_report_both_classes_per_workload_and_side(smoke):
    out, _ = smoke
    lay = load(out, "layouts")
    summary = lay["summary"]
    assert {"kit", "default"} <= set(summary["params"]["sides"])
    for wname, w in summary["workloads"].items():
        for row in w["by_load"]:
            for side in ("kit", "default"):
                m = row["sides"][side]
                for key in ("instant_wait_p95_s", "long_wait_p95_s", "worker_cpu_s"):
                    assert isinstance(m[key], float), (wname, side, key)
            assert "instant_p95_default_over_side" in row["sides"]["kit"]
            assert "long_p95_side_over_default" in row["sides"]["kit"]
        assert (out / f"layouts_{wname}.png").stat().st_size > 0
    assert all(run["instant_started"] == run["instant_sent"] > 0 for run in lay["runs"])
    assert all(run["long_started"] == run["long_sent"] for run in lay["runs"])


def test_summary_and_results_table(smoke):
    out, _ = smoke
    summary = load(out, "summary")
    assert {"mixed", "throughput", "memory", "layouts", "redis_benchmark"} <= set(summary)
    text = (out / "RESULTS.md").read_text()
    assert "p95" in text
    assert "kit ÷ defaults with Flower attached" in text and "kit with appendfsync always ÷ kit" in text


def test_no_process_outlives_the_run(smoke):
    _, stdout = smoke
    port = int(re.search(r"redis-server on 127\.0\.0\.1:(\d+)", stdout).group(1))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert procs.pids_matching("celery -A bench[.]") == []


def test_report_regenerates_the_marked_blocks_of_a_doc(smoke, tmp_path):
    out, _ = smoke
    sys.path.insert(0, str(ROOT))
    from bench import report
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- bench:layouts-kit -->\nstale\n<!-- /bench:layouts-kit -->\n"
                   "<!-- bench:mixed -->\n<!-- /bench:mixed -->\n<!-- bench:headline-mixed -->\n"
                   "<!-- /bench:headline-mixed -->\nend\n")
    assert report.update(doc, out) == 3
    text = doc.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| cpu-0.25s | 50% |" in text and "### Mixed load" in text and "slow tasks per second" in text
