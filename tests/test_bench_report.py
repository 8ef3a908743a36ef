"""The docs quote the recorded benchmark run only through generated blocks (``<!-- bench:NAME -->``
... ``<!-- /bench:NAME -->``): each block must be what ``python -m bench.report`` renders from
bench/results/ now. After a new run: ``python -m bench.report --update FILE...``."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("bench/README.md", "README.md", "docs/operations.md")


def check(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.report", "--check", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("doc", DOCS)
def test_generated_blocks_match_the_recorded_results(doc):
    assert "<!-- bench:" in (ROOT / doc).read_text(), f"{doc} quotes no generated block"
    proc = check(doc)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bench_readme_quotes_every_results_table_through_a_block():
    text = (ROOT / "bench" / "README.md").read_text()
    for name in ("mixed", "throughput", "memory", "layouts-all"):
        assert f"<!-- bench:{name} -->" in text and f"<!-- /bench:{name} -->" in text, name
    outside = "".join(part.split("<!-- /bench:", 1)[-1] for part in text.split("<!-- bench:"))
    assert "### Worker memory" not in outside and "| worker | idle RSS" not in outside


def test_a_block_edited_by_hand_is_reported(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text((ROOT / "bench" / "README.md").read_text()
                   .replace("<!-- /bench:memory -->", "| typed by hand | 1.0 | 1.0 | 1.0 |\n<!-- /bench:memory -->"))
    proc = check(str(doc))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert str(doc) in proc.stdout
