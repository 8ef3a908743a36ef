"""lab/timed_molecule.py against a stand-in `molecule` that logs through Molecule's own logger.

No VM is booted: the stub prints the section lines the installed Molecule prints around each action
(molecule.logger.section_logger), sleeps, and exits with the status it is told to.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "lab" / "timed_molecule.py"
sys.path.insert(0, str(REPO / "lab"))
import timed_molecule  # noqa: E402

SEQUENCE = ["destroy", "syntax", "create", "converge", "idempotence", "side_effect", "verify", "verify", "destroy"]

STUB_MOLECULE = f"""#!{sys.executable}
import json, os, sys, time
from molecule import logger
from molecule.ansi_output import AnsiOutput
from molecule.constants import ANSICodes as A
from molecule.reporting.definitions import CompletionState

with open(os.environ["STUB_ARGV"], "w") as f:
    json.dump(sys.argv[1:], f)
name = sys.argv[sys.argv.index("-s") + 1]
sequence = os.environ["STUB_SEQUENCE"].split(",")
sleeps = json.loads(os.environ.get("STUB_SLEEPS", "{{}}"))
logger.configure()
ansi = AnsiOutput()


def log(step):
    return logger.get_scenario_logger("molecule.logger", name, step)


def run(action, fail=False):
    log(action).info("[exec_executing]Executing[/]")
    print(f"PLAY [{{action}}] ***", flush=True)
    os.write(2, b"[WARNING]: a partial line ")  # fd 2: molecule.console redirects sys.stderr
    time.sleep(sleeps.get(action, 0.05))
    os.write(2, b"finished later\\n")
    if action == "create" and os.environ.get("STUB_LAB_CACHE"):
        with open(os.path.join(os.environ["STUB_LAB_CACHE"], "timings.jsonl"), "a") as f:
            f.write(json.dumps({{"lab": "mol-" + name, "accel": "tcg", "at": time.strftime("%FT%TZ", time.gmtime()),
                                "boot_seconds": 94.2, "boot_to_ssh": {{"broker": 93.8, "node": 87.9}}}}) + "\\n")
    if fail:
        os.write(2, "  \\u2502   FAILED tests/test_stack.py::test_x[ansible://control] - assert 0 == 1\\n".encode())
        f = CompletionState.failed
        log(action).error(f"{{f.color}}{{f.message}}{{A.RESET}}")
        return
    state = CompletionState.skipped(note="Missing playbook") if action == "syntax" else CompletionState.successful
    msg = ansi.format_completion_message(state.message, state.color)
    if state.note:
        msg += ansi.format_completion_note(state.note)
    getattr(log(action), state.log_level)(msg)


log("discovery").info("scenario test matrix: " + ", ".join(sequence))
for action in sequence:
    if action == os.environ.get("STUB_FAIL"):
        run(action, fail=True)
        log(action).warning(f"An error occurred during the test sequence action: '{{action}}'. Cleaning up.")
        run("destroy")
        sys.exit(int(os.environ.get("STUB_RC", "1")))
    run(action)
"""

STUB_BUILD_IMAGE = """#!/usr/bin/env bash
set -eu
flavour=$([[ -n "${LAB_PRELOAD-x}" ]] && echo preloaded || echo bare)
out="$STUB_IMAGES/${LAB_RELEASE:-bookworm}-$flavour-0123456789ab"
[[ "${STUB_IMAGE_RC:-0}" == 0 ]] || { echo "lab-image: debootstrap failed" >&2; exit "$STUB_IMAGE_RC"; }
echo "lab-image: cached $out" >&2
echo "$out"
"""


def molecule_yml(sequence: list[str], env: dict | None = None, platforms: list | None = None) -> str:
    provisioner = {"name": "ansible", "env": {"ANSIBLE_FORKS": "4", **(env or {})}}
    return json.dumps({"driver": {"name": "default"}, "platforms": platforms or [{"name": "node"}],
                       "provisioner": provisioner, "scenario": {"test_sequence": sequence}}, indent=2)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def kit(tmp_path):
    """A throwaway checkout with two scenarios, a stub image builder and a stub molecule."""
    repo = tmp_path / "repo"
    (repo / "lab").mkdir(parents=True)
    (repo / "lab" / "build-image.sh").write_text(STUB_BUILD_IMAGE)
    (repo / "lab" / "build-image.sh").chmod(0o755)
    mixed = [{"name": "broker"}, {"name": "node", "lab_release": "trixie"}]
    for name, env, platforms in (("default", None, None), ("supervisor", {"LAB_PRELOAD": ""}, None),
                                 ("mixed", None, mixed)):
        (repo / "molecule" / name).mkdir(parents=True)
        (repo / "molecule" / name / "molecule.yml").write_text(molecule_yml(SEQUENCE, env, platforms))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "kit")
    stub = tmp_path / "molecule"
    stub.write_text(STUB_MOLECULE)
    stub.chmod(0o755)
    lab_cache = tmp_path / "lab-cache"
    lab_cache.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "TERM")}
    env.update(STUB_SEQUENCE=",".join(SEQUENCE), STUB_ARGV=str(tmp_path / "argv.json"),
               STUB_IMAGES=str(tmp_path / "images"), STUB_LAB_CACHE=str(lab_cache), LAB_CACHE=str(lab_cache),
               NO_COLOR="1")

    class Kit:
        def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
            cmd = [sys.executable, str(SCRIPT), "--repo", str(repo), *args]
            if args[0] == "test":
                cmd += ["--molecule", str(stub)]
            return subprocess.run(cmd, env={**self.env, **extra}, capture_output=True, timeout=120)

        def timings(self) -> dict:
            return json.loads((repo / "molecule" / "results" / "timings.json").read_text())

    k = Kit()
    k.repo, k.tmp, k.env = repo, tmp_path, env
    return k


@pytest.mark.parametrize("colour", ["NO_COLOR", "FORCE_COLOR"])
def test_stages_follow_the_test_sequence(kit, colour):
    env = {"NO_COLOR": "", "FORCE_COLOR": "1"} if colour == "FORCE_COLOR" else {}
    env = {k: v for k, v in {**kit.env, **env}.items() if v != ""}
    kit.env = env
    proc = kit.run("test", "default", STUB_SLEEPS=json.dumps({"converge": 0.6, "verify": 0.3}))
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((kit.tmp / "argv.json").read_text()) == ["test", "-s", "default"]
    # Streams pass through: stdout untouched, stderr byte for byte plus the wrapper's own === lines.
    assert proc.stdout.decode().count("PLAY [") == len(SEQUENCE)
    assert b"[WARNING]: a partial line finished later\n" in proc.stderr
    if colour == "FORCE_COLOR":
        assert "\x1b[" in proc.stderr.decode() and "\u279c" in proc.stderr.decode()

    entry = kit.timings()["scenarios"]["default"]
    assert entry["test_sequence"] == SEQUENCE
    assert [s["stage"] for s in entry["stages"]] == ["image", *SEQUENCE]
    image, *actions = entry["stages"]
    assert image["result"] == "cached" and image["image"] == "bookworm-preloaded-0123456789ab"
    results = {s["stage"]: s["result"] for s in actions}
    assert results["syntax"] == "Skipped (Missing playbook)" and results["converge"] == "Successful"
    seconds = {s["stage"]: s["seconds"] for s in actions}
    assert 0.6 <= seconds["converge"] < 5 and seconds["destroy"] < 0.6
    assert [s["seconds"] >= 0.3 for s in actions if s["stage"] == "verify"] == [True, True]
    offsets = [s["offset_s"] for s in actions]
    assert offsets == sorted(offsets)
    assert entry["total_seconds"] >= sum(s["seconds"] for s in entry["stages"]) - 0.5
    assert entry["exit_code"] == 0 and entry["result"] == "passed" and entry["not_run"] == []
    assert entry["commit"] == git(kit.repo, "rev-parse", "HEAD") and entry["dirty"] is False
    assert set(entry["host"]) >= {"cpus", "kvm"} and isinstance(entry["host"]["kvm"], bool)
    assert entry["boot"] == {"accel": "tcg", "seconds": 94.2, "to_ssh": {"broker": 93.8, "node": 87.9}}

    md = (kit.repo / "molecule" / "results" / "timings.md").read_text()
    converge, noop = (next(s["seconds"] for s in actions if s["stage"] == st) for st in ("converge", "idempotence"))
    assert f"| default | {converge:.1f} | {noop:.1f} | {100 * noop / converge:.0f} % |" in md
    header = next(line for line in md.splitlines() if line.startswith("| scenario | commit"))
    assert header.split(" | ")[4:-2] == ["destroy", "syntax", "create", "converge", "idempotence", "side_effect",
                                         "verify"]
    row = next(line for line in md.splitlines() if line.startswith("| default |"))
    assert f"`{entry['commit'][:7]}`" in row and "(cached `bookworm-preloaded-0123456789ab`)" in row
    assert f"{seconds['converge']:.1f}" in row and " + " in row


def test_a_scenario_mixing_releases_builds_one_image_per_release(kit):
    proc = kit.run("test", "mixed")
    assert proc.returncode == 0, proc.stderr.decode()
    image = kit.timings()["scenarios"]["mixed"]["stages"][0]
    assert image["stage"] == "image" and image["result"] == "cached"
    assert image["image"] == "bookworm-preloaded-0123456789ab, trixie-preloaded-0123456789ab"


def test_failure_passes_the_exit_code_and_records_what_ran(kit):
    proc = kit.run("test", "default", "supervisor", STUB_FAIL="idempotence", STUB_RC="3")
    assert proc.returncode == 3
    data = kit.timings()
    assert "supervisor" not in data["scenarios"]  # stopped at the first failure, like `set -e`
    entry = data["scenarios"]["default"]
    assert [(s["stage"], s["result"]) for s in entry["stages"][-3:]] == [
        ("converge", "Successful"), ("idempotence", "Failed"), ("destroy", "Successful")]
    assert entry["not_run"] == ["side_effect", "verify", "verify"]
    assert entry["exit_code"] == 3 and entry["result"] == "failed"
    why = "FAILED tests/test_stack.py::test_x[ansible://control] - assert 0 == 1"
    assert entry["why"] == [why]
    # ...repeated as the last lines of the output, where a CI log's tail shows it
    assert proc.stderr.decode().rstrip().endswith(f"=== why default failed:\n{why}")
    assert data["run"]["scenarios"] == ["default"] and data["run"]["requested"] == ["default", "supervisor"]
    assert data["run"]["exit_code"] == 3
    md = (kit.repo / "molecule" / "results" / "timings.md").read_text()
    assert "(Failed)" in md and "not run: side_effect, verify, verify" in md
    assert "| `make test-vm` | default (not run: supervisor) |" in md
    assert "(Skipped: Missing playbook)" in md


def test_merge_keeps_other_entries_and_replaces_its_own(kit):
    results = kit.repo / "molecule" / "results"
    results.mkdir(parents=True)
    other = {"commit": "f" * 40, "dirty": False, "stages": [], "result": "passed", "total_seconds": 1.0}
    (results / "timings.json").write_text(json.dumps({"scenarios": {"smoke": other},
                                                      "suites": {"fast": {"result": "passed"}}}))
    assert kit.run("test", "supervisor").returncode == 0
    first = kit.timings()
    assert first["scenarios"]["smoke"] == other and first["suites"] == {"fast": {"result": "passed"}}
    assert first["scenarios"]["supervisor"]["stages"][0]["image"] == "bookworm-bare-0123456789ab"
    assert first["run"]["scenarios"] == ["supervisor"] and first["run"]["exit_code"] == 0

    (kit.repo / "untracked.txt").write_text("x")
    assert kit.run("test", "supervisor", STUB_SEQUENCE="destroy,create,destroy").returncode == 0
    second = kit.timings()
    assert second["scenarios"]["smoke"] == other
    sup = second["scenarios"]["supervisor"]
    assert [s["stage"] for s in sup["stages"]] == ["image", "destroy", "create", "destroy"]
    assert sup["not_run"] == ["syntax", "converge", "idempotence", "side_effect", "verify", "verify"]
    assert sup["dirty"] is True and sup["dirty_paths"] == ["untracked.txt"]


def test_image_build_failure_stops_before_molecule(kit):
    proc = kit.run("test", "default", STUB_IMAGE_RC="2")
    assert proc.returncode == 2
    assert not (kit.tmp / "argv.json").exists()
    assert kit.timings()["scenarios"]["default"]["stages"] == [
        {"stage": "image", "seconds": pytest.approx(0, abs=2), "offset_s": 0.0, "result": "failed"}]


def test_no_image_leaves_the_build_to_create(kit):
    assert kit.run("test", "--no-image", "default").returncode == 0
    assert kit.timings()["scenarios"]["default"]["stages"][0]["stage"] == "destroy"


def test_suite_records_a_command(kit):
    proc = kit.run("suite", "fast", "--", sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(4)")
    assert proc.returncode == 4
    fast = kit.timings()["suites"]["fast"]
    assert fast["exit_code"] == 4 and fast["result"] == "failed" and fast["total_seconds"] >= 0.3
    assert "suite `fast`" in (kit.repo / "molecule" / "results" / "timings.md").read_text()


def test_markdown_comes_from_the_json(kit):
    results = kit.repo / "molecule" / "results"
    results.mkdir(parents=True)
    entry = {"commit": "abcdef1234", "dirty": True, "host": {"cpus": 2, "kvm": False}, "result": "passed",
             "total_seconds": 1220.4, "not_run": [],
             "stages": [{"stage": "image", "seconds": 0.1, "result": "cached", "image": "bookworm-bare-x"},
                        {"stage": "converge", "seconds": 612.0, "result": "Successful"}]}
    (results / "timings.json").write_text(json.dumps({"scenarios": {"default": entry}}))
    assert kit.run("render").returncode == 0
    md = (results / "timings.md").read_text()
    assert md.startswith("<!-- generated by lab/timed_molecule.py")
    assert ("| default | `abcdef1` + changes | 2 CPUs, /dev/kvm no | 0.1 (cached `bookworm-bare-x`) | 612 "
            "| 20 min 20 s | passed |") in md


@pytest.mark.parametrize(("line", "parsed"), [
    ("INFO     [default > converge] Executing", ("default", "converge", "Executing")),
    ("INFO     [default > side_effect] Executed: Skipped (Missing playbook)",
     ("default", "side_effect", "Executed: Skipped (Missing playbook)")),
    ("ERROR    [default > verify] \x1b[31mExecuted: Failed\x1b[0m", ("default", "verify", "Executed: Failed")),
    ("\x1b[36mINFO    \x1b[0m \x1b[32mdefault\x1b[0m \u279c \x1b[33mconverge\x1b[0m: \x1b[36mExecuting\x1b[0m",
     ("default", "converge", "Executing")),
    ("INFO     [default > discovery] scenario test matrix: destroy, create",
     ("default", "discovery", "scenario test matrix: destroy, create")),
    ("no newline yetINFO     [supervisor > verify] Executing", ("supervisor", "verify", "Executing")),
    ("TASK [Boot the scenario's VMs] ******", None),
    ("[WARNING]: Platform linux on host broker is using the discovered Python interpreter", None),
    ("changed: [localhost]", None),
])
def test_parse_line(line, parsed):
    assert timed_molecule.parse_line(line) == parsed


def test_read_test_sequence_drops_step_arguments(tmp_path):
    f = tmp_path / "molecule.yml"
    f.write_text(textwrap.dedent("""\
        scenario:
          test_sequence: [create, converge, side_effect faults.yml, verify, destroy]
        """))
    assert timed_molecule.read_test_sequence(f) == ["create", "converge", "side_effect", "verify", "destroy"]
    f.write_text("driver: {name: default}\n")
    assert timed_molecule.read_test_sequence(f) is None


def test_a_scenario_is_read_with_the_base_configuration_merged_in(tmp_path, monkeypatch):
    """Molecule merges molecule/NAME/molecule.yml over .config/molecule/config.yml: the sequence, the
    LAB_* env and the platforms' releases come from both."""
    monkeypatch.delenv("LAB_RELEASE", raising=False)
    (tmp_path / ".config" / "molecule").mkdir(parents=True)
    (tmp_path / ".config" / "molecule" / "config.yml").write_text(json.dumps({
        "platforms": [{"name": "broker"}, {"name": "node", "lab_release": "trixie"}],
        "provisioner": {"env": {"LAB_PRELOAD": "yes", "LAB_X": "1"}},
        "scenario": {"test_sequence": ["create", "verify"]}}))
    inherits = tmp_path / "molecule" / "inherits" / "molecule.yml"
    own = tmp_path / "molecule" / "own" / "molecule.yml"
    for f in (inherits, own):
        f.parent.mkdir(parents=True)
    inherits.write_text("provisioner: {env: {LAB_PRELOAD: ''}}\n")
    own.write_text("platforms: [{name: solo}]\nscenario: {test_sequence: [create, converge, destroy]}\n")
    assert timed_molecule.read_test_sequence(inherits) == ["create", "verify"]
    assert timed_molecule.lab_env(inherits) == {"LAB_PRELOAD": "", "LAB_X": "1"}
    assert timed_molecule.lab_releases(inherits, {}) == ["bookworm", "trixie"]
    assert timed_molecule.read_test_sequence(own) == ["create", "converge", "destroy"]
    assert timed_molecule.lab_releases(own, {}) == ["bookworm"]
