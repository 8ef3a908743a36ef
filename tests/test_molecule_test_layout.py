"""The lab's testinfra modules name the hosts they run on, and every scenario runs the modules it
lists (no VM): a module without testinfra_hosts would run on every host, one that skips itself
whole would pass while checking nothing, a verifier path that does not exist runs no test at all."""
from __future__ import annotations

import ast
import glob
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from labvm import topology  # noqa: E402

MODULES = sorted((REPO / "molecule").glob("*/tests/test_*.py"))
SCENARIOS = sorted((REPO / "molecule").glob("*/molecule.yml"))


def _testinfra_hosts(tree: ast.Module) -> list | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "testinfra_hosts" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(REPO / "molecule")) for p in MODULES])
def test_each_module_names_its_inventory_groups_and_never_skips_whole(path):
    text = path.read_text()
    hosts = _testinfra_hosts(ast.parse(text))
    assert hosts, f"{path.name}: no module-level testinfra_hosts"
    assert all(h.startswith("ansible://") for h in hosts), hosts
    assert "allow_module_level" not in text
    assert "pytest.mark.skip" not in text.replace("pytest.mark.skipif(shutil.which", "")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.parent.name for p in SCENARIOS])
def test_every_verifier_path_of_a_scenario_exists(path):
    """As Molecule's testinfra verifier globs them: the directory, then additional_files_or_dirs
    relative to it."""
    verifier = topology.scenario_config(path)["verifier"]
    directory = path.parent / verifier.get("directory", "tests")
    assert directory.is_dir(), directory
    assert list(directory.glob("test_*.py")), directory
    for extra in verifier.get("additional_files_or_dirs", []):
        assert glob.glob(os.path.join(glob.escape(str(directory)), extra)), extra
