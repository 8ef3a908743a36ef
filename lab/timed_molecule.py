#!/usr/bin/env python3
"""Run `molecule test` for lab scenarios and record the wall time of every stage.

    lab/timed_molecule.py test default                # what `make test-vm` runs
    lab/timed_molecule.py suite fast -- pytest tests  # time any command as a named suite (`make test-fast`)
    lab/timed_molecule.py render                      # rewrite timings.md from timings.json

`test` runs, per scenario and one after the other (stopping at the first failure, like the loop it replaces):

1. `lab/build-image.sh` with the scenario's `LAB_*` provisioner env, once per Debian release its platforms
   boot (`lab_release`), so the `image` stage is the builds or cache hits on their own, and which images
   they were; the `create` playbook then finds them cached;
2. `molecule test -s NAME`. Its stdout is left alone (the terminal gets it directly); its stderr is copied
   to ours as it arrives and scanned for Molecule's own section lines, which bound each action of the
   scenario's `test_sequence` (whatever its configuration says it is, repeated actions included):

       INFO     [default > converge] Executing               (no colours)
       INFO     default ➜ converge: Executing                (colours, once ANSI codes are removed)
       INFO     [default > converge] Executed: Successful
       ERROR    [default > verify] Executed: Failed

Each scenario's entry in molecule/results/timings.json (other scenarios' entries are kept) holds the commit
(`git rev-parse HEAD`, plus whether the tree differed from it), the host's CPU count and /dev/kvm access,
the accelerator and boot-to-SSH times `lab/labctl up` logged in .cache/lab/timings.jsonl, and one record
per stage. molecule/results/timings.md is generated from the json after every write. The exit status is
Molecule's (or the image build's, if that failed).
"""
from __future__ import annotations

import argparse
import calendar
import contextlib
import fcntl
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RIGHT_ARROW = "\u279c"  # molecule.constants.ANSICodes.RIGHT_ARROW
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# molecule.logger.MoleculeConsoleHandler: "LEVEL    " then molecule.ansi_output.AnsiOutput.format_scenario,
# "[scenario > step]" without colours, "scenario ➜ step:" with them; then the message. Not anchored to the
# start of the line: a child's unfinished line on the same stderr may precede it.
LOG_RE = re.compile(
    r"(?<![A-Z])(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+"
    r"(?:\[(?P<plain_scenario>[^\]\s]+) > (?P<plain_step>[\w-]+)\]"
    rf"|(?P<scenario>\S+) {RIGHT_ARROW} (?P<step>[\w-]+):) (?P<message>.*)$"
)
EXECUTING = "Executing"
EXECUTED = "Executed: "
TIMING_FILES = ("timings.json", "timings.md")


def parse_line(line: str) -> tuple[str, str, str] | None:
    """(scenario, action, message) of a Molecule scenario log line, ANSI codes removed, else None."""
    m = LOG_RE.search(ANSI_RE.sub("", line).rstrip("\r\n"))
    if not m:
        return None
    scenario = m["plain_scenario"] or m["scenario"]
    step = m["plain_step"] or m["step"]
    return scenario, step, m["message"].strip()


class StageClock:
    """Turns a scenario's Executing / Executed lines into timed stages, in the order they ran."""

    def __init__(self, scenario: str, start: float):
        self.scenario = scenario
        self.start = start
        self.stages: list[dict] = []
        self._open: dict | None = None
        self._open_at = 0.0

    def feed(self, line: str, now: float) -> None:
        parsed = parse_line(line)
        if not parsed or parsed[0] != self.scenario:
            return
        _, action, message = parsed
        if message == EXECUTING:
            self._close(now, "interrupted")
            self._open = {"stage": action, "result": None}
            self._open_at = now
            self.stages.append(self._open)
        elif message.startswith(EXECUTED) and self._open is not None and self._open["stage"] == action:
            self._close(now, message[len(EXECUTED):].strip())

    def _close(self, now: float, result: str) -> None:
        if self._open is not None:
            self._open["seconds"] = round(now - self._open_at, 1)
            self._open["offset_s"] = round(self._open_at - self.start, 1)
            self._open["result"] = result
            self._open = None

    def finish(self, now: float) -> list[dict]:
        self._close(now, "interrupted")
        return self.stages


# Lines that say why a run failed: pytest's short summary (testinfra), Ansible's task failures, the
# launcher giving up on a VM. Box-drawing prefixes of Molecule's output are dropped.
WHY_RE = re.compile(r"^(FAILED |ERROR (?! )|fatal: \[|failed: \[|lab: .* not reachable)")
WHY_KEEP = 30


class FailureLines:
    """The first WHY_KEEP lines of a run that say why it failed, in the order they came."""

    def __init__(self):
        self.lines: list[str] = []

    def feed(self, line: str, _now: float) -> None:
        text = ANSI_RE.sub("", line).strip().lstrip("│").strip()
        if len(self.lines) < WHY_KEEP and WHY_RE.match(text):
            self.lines.append(text[:500])


def not_run(sequence: list[str] | None, stages: list[dict]) -> list[str]:
    """Actions of the test_sequence that never started (matched in order, repeats counted)."""
    if not sequence:
        return []
    ran = [s["stage"] for s in stages]
    missing, i = [], 0
    for action in sequence:
        try:
            i = ran.index(action, i) + 1
        except ValueError:
            missing.append(action)
    return missing


def load_yaml(path: Path) -> dict:
    """The scenario's configuration: its molecule.yml merged over the project's base configuration
    (.config/molecule/config.yml), as Molecule reads it (lab/labvm/topology.py)."""
    from labvm import topology  # lab/ is this script's directory

    try:
        return topology.scenario_config(path)
    except OSError:  # no such scenario: Molecule says so itself
        return {}


def read_test_sequence(molecule_file: Path) -> list[str] | None:
    """The scenario's scenario.test_sequence (action names; a step may carry arguments), or None."""
    seq = (load_yaml(molecule_file).get("scenario") or {}).get("test_sequence")
    return [str(step).split()[0] for step in seq] if seq else None


def lab_env(molecule_file: Path) -> dict[str, str]:
    """The LAB_* variables of the scenario's provisioner env (what lab/build-image.sh reads)."""
    env = (load_yaml(molecule_file).get("provisioner") or {}).get("env") or {}
    return {k: "" if v is None else str(v) for k, v in env.items() if k.startswith("LAB_")}


def lab_releases(molecule_file: Path, env: dict[str, str]) -> list[str]:
    """The Debian releases the scenario's platforms boot (`lab_release`, else LAB_RELEASE, else bookworm)."""
    default = env.get("LAB_RELEASE") or os.environ.get("LAB_RELEASE") or "bookworm"
    platforms = load_yaml(molecule_file).get("platforms") or []
    return list(dict.fromkeys(str(p.get("lab_release") or default) for p in platforms)) or [default]


def git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def revision(repo: Path, results: Path) -> dict:
    """The commit a run tests; `dirty` if the tree differs from it (the timing files themselves aside)."""
    excludes = []
    with contextlib.suppress(ValueError):
        rel = results.resolve().relative_to(repo.resolve())
        excludes = [f":(exclude){rel / name}" for name in TIMING_FILES]
    status = git(repo, "status", "--porcelain", "--", ".", *excludes)
    paths = [line[3:] for line in (status or "").splitlines()]
    return {"commit": git(repo, "rev-parse", "HEAD"), "dirty": bool(paths), "dirty_paths": paths[:20]}


def host_facts() -> dict:
    return {"cpus": len(os.sched_getaffinity(0)), "kvm": os.access("/dev/kvm", os.R_OK | os.W_OK),
            "load_1m": round(os.getloadavg()[0], 2)}


def molecule_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("molecule")
    except Exception:  # noqa: BLE001 - only informative
        return None


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def exit_status(rc: int) -> int:
    return 128 - rc if rc < 0 else rc


def boot_record(lab_cache: Path, lab: str, since: float) -> dict | None:
    """What `labctl up` appended to timings.jsonl for this lab during the run (the last one)."""
    found = None
    with contextlib.suppress(OSError):
        for line in (lab_cache / "timings.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                rec = json.loads(line)
                at = calendar.timegm(time.strptime(rec["at"], "%Y-%m-%dT%H:%M:%SZ"))
                if rec["lab"] == lab and at >= since - 1:
                    found = {"accel": rec.get("accel"), "seconds": rec.get("boot_seconds"),
                             "to_ssh": rec.get("boot_to_ssh")}
    return found


@contextlib.contextmanager
def child_signals(proc: subprocess.Popen):
    """While proc runs: ignore ^C (the terminal sends it to proc too, and Molecule cleans up before it
    exits, so the record is still written) and pass a SIGTERM on."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def run_tee_stderr(argv: list[str], on_line) -> int:
    """Run argv with stdout left alone and stderr copied through to ours as it arrives; each complete stderr
    line also goes to on_line(line, monotonic time). Returns the exit status."""
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    with child_signals(proc):
        _pump(proc, proc.stderr, sys.stderr.buffer, on_line)
        return exit_status(proc.wait())


def _pump(proc: subprocess.Popen, pipe, out, on_line) -> None:
    """Copy pipe to out as chunks arrive; stop at EOF, or shortly after proc exits (a daemon it left
    behind may hold the pipe open). If out goes away, keep reading so the child never blocks on it."""
    fd = pipe.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    pending = b""
    exited_at = None
    while True:
        if exited_at is None and proc.poll() is not None:
            exited_at = time.monotonic()
        if exited_at is not None and time.monotonic() - exited_at > 1.0:
            break
        if not sel.select(timeout=0.2):
            continue
        chunk = os.read(fd, 65536)
        now = time.monotonic()
        if not chunk:
            break
        if out is not None:
            try:
                out.write(chunk)
                out.flush()
            except OSError:
                out = None
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line(line.decode("utf-8", "replace"), now)
    if pending:
        on_line(pending.decode("utf-8", "replace"), time.monotonic())
    sel.close()
    pipe.close()


def build_image(build_script: Path, env_overrides: dict[str, str]) -> tuple[int, dict]:
    """Run lab/build-image.sh: stderr to ours, the image directory from its last stdout line."""
    start = time.monotonic()
    verdict = {"result": "failed"}

    def on_line(line: str, _now: float) -> None:
        text = ANSI_RE.sub("", line)
        if text.startswith("lab-image: cached"):
            verdict["result"] = "cached"
        elif text.startswith("lab-image: built"):
            verdict["result"] = "built"

    env = dict(os.environ, **env_overrides)
    proc = subprocess.Popen([str(build_script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    with child_signals(proc):
        _pump(proc, proc.stderr, sys.stderr.buffer, on_line)
        rc = exit_status(proc.wait())
    reader.join(timeout=5)
    lines = b"".join(out).decode("utf-8", "replace").strip().splitlines()
    stage = {"stage": "image", "seconds": round(time.monotonic() - start, 1), "offset_s": 0.0,
             "result": verdict["result"] if rc == 0 else "failed"}
    if rc == 0 and lines:
        stage["image"] = Path(lines[-1]).name
        stage["image_dir"] = lines[-1]
    return rc, stage


def merge_image_stages(first: dict, second: dict) -> dict:
    """One `image` stage for a scenario that boots two releases: both times, both images."""
    results = {first["result"], second["result"]}
    merged = {**first, "seconds": round(first["seconds"] + second["seconds"], 1),
              "result": "failed" if "failed" in results else "built" if "built" in results else "cached"}
    if "image" in second:
        merged["image"] = ", ".join(filter(None, [first.get("image"), second["image"]]))
        merged["image_dir"] = ", ".join(filter(None, [first.get("image_dir"), second["image_dir"]]))
    return merged


def run_scenario(name: str, opts: argparse.Namespace) -> tuple[int, dict]:
    molecule_file = opts.scenarios / name / "molecule.yml"
    sequence = read_test_sequence(molecule_file)
    t0, wall0 = time.monotonic(), time.time()
    entry = {**revision(opts.repo, opts.results), "started": utc(wall0), "host": host_facts(),
             "molecule": molecule_version(), "command": f"molecule test -s {name}", "test_sequence": sequence}
    stages: list[dict] = []
    rc = 0
    if opts.image:
        env = lab_env(molecule_file)
        rc, image_stage = 0, None
        for release in lab_releases(molecule_file, env):
            rc, one = build_image(opts.build_image, {**env, "LAB_RELEASE": release})
            image_stage = one if image_stage is None else merge_image_stages(image_stage, one)
            if rc != 0:
                break
        stages.append(image_stage)
    if rc == 0:
        clock, why = StageClock(name, t0), FailureLines()
        rc = run_tee_stderr([opts.molecule, "test", "-s", name], lambda line, now: (clock.feed(line, now),
                                                                                     why.feed(line, now)))
        stages += clock.finish(time.monotonic())
        if rc:
            entry["why"] = why.lines
    end = time.monotonic()
    entry.update(
        finished=utc(time.time()), exit_code=rc, result="passed" if rc == 0 else "failed",
        stages=stages, not_run=not_run(sequence, [s for s in stages if s["stage"] != "image"]),
        boot=boot_record(opts.lab_cache, f"mol-{name}", wall0), total_seconds=round(end - t0, 1),
    )
    entry["host"]["load_1m_end"] = round(os.getloadavg()[0], 2)
    return rc, entry


@contextlib.contextmanager
def locked(results: Path):
    """Serialise read-modify-write of timings.json (a lock on the results directory itself)."""
    results.mkdir(parents=True, exist_ok=True)
    fd = os.open(results, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def merge(results: Path, update) -> dict:
    """Apply update(data) to timings.json under the lock, write it and timings.md atomically."""
    with locked(results):
        path = results / "timings.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault("scenarios", {})
        update(data)
        write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
        write_atomic(results / "timings.md", markdown(data))
    return data


def write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(text)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 60:
        m, s = divmod(round(seconds), 60)
        return f"{m} min {s:02d} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def short(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def commit_label(rec: dict) -> str:
    commit = (rec.get("commit") or "unknown")[:7]
    return f"`{commit}`" + (" + changes" if rec.get("dirty") else "")


def markdown(data: dict) -> str:
    """The tables of molecule/results/timings.md, from timings.json alone."""
    scenarios = data.get("scenarios", {})
    columns: list[str] = []
    for entry in scenarios.values():
        for stage in entry.get("stages", []):
            if stage["stage"] != "image" and stage["stage"] not in columns:
                columns.append(stage["stage"])
    lines = [
        "<!-- generated by lab/timed_molecule.py from timings.json; do not edit -->",
        ("Wall time of each stage of the last `molecule test` of every scenario (`make test-vm`), in seconds; "
         "an action that ran twice shows both times. `image` is `lab/build-image.sh` before Molecule starts "
         "(`cached` or `built`); `create` boots the VMs."),
        "",
        "| scenario | commit | host | image | " + " | ".join(columns) + " | total | result |",
        "|---" * (len(columns) + 6) + "|",
    ]
    for name, e in sorted(scenarios.items()):
        host = e.get("host", {})
        accel = (e.get("boot") or {}).get("accel")
        host_cell = f"{host.get('cpus')} CPUs, /dev/kvm {'yes' if host.get('kvm') else 'no'}"
        host_cell += f", {accel}" if accel else ""
        host_cell += f", load {host['load_1m']}" if "load_1m" in host else ""
        image = next((s for s in e.get("stages", []) if s["stage"] == "image"), None)
        image_cell = "–"
        if image:
            which = f" `{image['image']}`" if image.get("image") else ""
            image_cell = f"{short(image['seconds'])} ({image['result']}{which})"
        cells = []
        for col in columns:
            runs = [s for s in e.get("stages", []) if s["stage"] == col]
            cell = " + ".join(short(s.get("seconds")) for s in runs) or "–"
            odd = [s["result"].replace(" (", ": ").rstrip(")") for s in runs if s.get("result") != "Successful"]
            if odd:
                cell += f" ({', '.join(odd)})"
            cells.append(cell)
        result = e.get("result", "?") + (f", not run: {', '.join(e['not_run'])}" if e.get("not_run") else "")
        lines.append(f"| {name} | {commit_label(e)} | {host_cell} | {image_cell} | " + " | ".join(cells)
                     + f" | {duration(e.get('total_seconds'))} | {result} |")
    reruns = []
    for n, e in sorted(scenarios.items()):
        cold = next((s for s in e.get("stages", []) if s["stage"] == "converge" and s.get("seconds")), None)
        noop = next((s for s in e.get("stages", []) if s["stage"] == "idempotence" and s.get("seconds")), None)
        if cold and noop and noop.get("result") == "Successful":
            reruns.append(f"| {n} | {short(cold['seconds'])} | {short(noop['seconds'])} "
                          f"| {100 * noop['seconds'] / cold['seconds']:.0f} % |")
    if reruns:
        lines += ["", "A no-op rerun of the playbook (`idempotence`) against the cold `converge`:", "",
                  "| scenario | converge | idempotence | ratio |", "|---|---|---|---|", *reruns]
    boots = [(n, e["boot"]) for n, e in sorted(scenarios.items()) if e.get("boot")]
    if boots:
        lines += ["", "Boot to SSH per VM during `create` (from `lab/labctl up`):", "",
                  "| scenario | accelerator | all VMs | per VM |", "|---|---|---|---|"]
        for n, b in boots:
            per_vm = ", ".join(f"{vm} {short(s)}" for vm, s in (b.get("to_ssh") or {}).items())
            lines.append(f"| {n} | {b.get('accel')} | {short(b.get('seconds'))} | {per_vm} |")
    runs = [("`make test-vm`", data.get("run"))] + [
        (f"suite `{n}`", s) for n, s in sorted(data.get("suites", {}).items())]
    runs = [(label, r) for label, r in runs if r]
    if runs:
        lines += ["", "| last run | what | commit | total | result |", "|---|---|---|---|---|"]
        for label, r in runs:
            what = f"`{r.get('command')}`"
            if "scenarios" in r:
                what = ", ".join(r["scenarios"])
                skipped = [n for n in r.get("requested", []) if n not in r["scenarios"]]
                what += f" (not run: {', '.join(skipped)})" if skipped else ""
            lines.append(f"| {label} | {what} | {commit_label(r)} | {duration(r.get('total_seconds'))} "
                         f"| {r.get('result')} |")
    return "\n".join(lines) + "\n"


def cmd_test(opts: argparse.Namespace) -> int:
    t0, wall0 = time.monotonic(), time.time()
    rev = revision(opts.repo, opts.results)
    rc, done = 0, []
    for name in opts.scenario:
        print(f"=== molecule test -s {name}", file=sys.stderr, flush=True)
        rc, entry = run_scenario(name, opts)
        merge(opts.results, lambda data, record={name: entry}: data["scenarios"].update(record))
        done.append(name)
        print(f"=== {name} {entry['result']} in {duration(entry['total_seconds'])} "
              f"(timings: {opts.results / 'timings.md'})", file=sys.stderr, flush=True)
        if rc:
            # Repeated last, where a CI log's tail shows it.
            why = entry.get("why") or ["(no FAILED / fatal line in the output; see above)"]
            print(f"=== why {name} failed:", *why, sep="\n", file=sys.stderr, flush=True)
            break
    run = {**rev, "started": utc(wall0), "scenarios": done, "requested": opts.scenario, "exit_code": rc,
           "result": "passed" if rc == 0 else "failed", "total_seconds": round(time.monotonic() - t0, 1)}
    merge(opts.results, lambda data: data.update(run=run))
    return rc


def cmd_suite(opts: argparse.Namespace) -> int:
    argv = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not argv:
        raise SystemExit("suite: give the command after --")
    rev, t0, wall0 = revision(opts.repo, opts.results), time.monotonic(), time.time()
    proc = subprocess.Popen(argv)
    with child_signals(proc):
        rc = exit_status(proc.wait())
    rec = {**rev, "started": utc(wall0), "command": " ".join(argv), "host": host_facts(), "exit_code": rc,
           "result": "passed" if rc == 0 else "failed", "total_seconds": round(time.monotonic() - t0, 1)}
    merge(opts.results, lambda data: data.setdefault("suites", {}).update({opts.name: rec}))
    return rc


def cmd_render(opts: argparse.Namespace) -> int:
    merge(opts.results, lambda data: None)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose commit is recorded (default: this one)")
    ap.add_argument("--results", type=Path, help="directory of timings.json/.md (default: REPO/molecule/results)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("test", help="molecule test each scenario in turn, recording its stages")
    t.add_argument("scenario", nargs="+")
    t.add_argument("--molecule", default="molecule", help="Molecule executable (default: molecule on PATH)")
    t.add_argument("--scenarios", type=Path, help="directory of the scenarios (default: REPO/molecule)")
    t.add_argument("--build-image", type=Path, help="image builder (default: REPO/lab/build-image.sh)")
    t.add_argument("--no-image", dest="image", action="store_false",
                   help="do not build the image first (its time is then part of create)")
    s = sub.add_parser("suite", help="time a command and record it under suites.NAME")
    s.add_argument("name")
    s.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("render", help="regenerate timings.md from timings.json")
    opts = ap.parse_args(argv)
    opts.results = opts.results or opts.repo / "molecule" / "results"
    if opts.cmd == "test":
        opts.scenarios = opts.scenarios or opts.repo / "molecule"
        opts.build_image = opts.build_image or opts.repo / "lab" / "build-image.sh"
        opts.lab_cache = Path(os.environ.get("LAB_CACHE", opts.repo / ".cache" / "lab"))
        return cmd_test(opts)
    if opts.cmd == "suite":
        return cmd_suite(opts)
    return cmd_render(opts)


if __name__ == "__main__":
    sys.exit(main())
