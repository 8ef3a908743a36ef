"""celery-kit-exec, the launcher every worker runs under (as shipped in deploy/opt/celery/bin).

It loads KEY='value' environment files and turns one SIGTERM into Celery's two-step stop:
SIGTERM to the program at once, SIGQUIT after --stop-timeout seconds if it is still running.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from roles_support import REPO
from support import procs

EXEC = REPO / "deploy/opt/celery/bin/celery-kit-exec"

# Records the signals it gets; exits on QUIT (like a cold shutdown) or, if asked, on TERM.
CHILD = r"""
import os, signal, sys, time
exit_on_term = sys.argv[1] == "exit-on-term"
out = open(sys.argv[2], "a", buffering=1)
def on(sig, frame):
    out.write(f"{signal.Signals(sig).name} {time.monotonic():.2f}\n")
    if sig == signal.SIGQUIT or (exit_on_term and sig == signal.SIGTERM):
        sys.exit(3 if sig == signal.SIGQUIT else 0)
for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
    signal.signal(s, on)
out.write(f"START {os.environ.get('KIT_A')} {os.environ.get('KIT_B')} {time.monotonic():.2f}\n")
while True:
    time.sleep(0.05)
"""


def _start(tmp_path: Path, mode: str, *exec_args: str):
    log = tmp_path / "signals.log"
    env1, env2 = tmp_path / "one.env", tmp_path / "two.env"
    env1.write_text("# comment\nKIT_A='with spaces and $dollar'\n")
    env2.write_text("KIT_B='second'\n")
    # Default signal actions, as systemd and supervisord start it: a shell cannot trap a signal
    # that was ignored when it started (e.g. HUP under nohup).
    proc = subprocess.Popen(["/bin/sh", str(EXEC), *exec_args, str(env1), str(env2), "--",
                             sys.executable, "-c", CHILD, mode, str(log)],
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    for _ in range(100):
        if log.exists() and log.read_text():
            break
        time.sleep(0.05)
    return proc, log


def _events(log: Path) -> list[tuple[str, float]]:
    return [(line.split()[0], float(line.split()[-1])) for line in log.read_text().splitlines()]


def test_environment_files_are_loaded_literally(tmp_path):
    proc, log = _start(tmp_path, "exit-on-term")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert log.read_text().splitlines()[0].startswith("START with spaces and $dollar second ")


def test_without_stop_timeout_the_launcher_becomes_the_program(tmp_path):
    proc, log = _start(tmp_path, "exit-on-term")
    argv = procs.cmdline(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert argv[0] == sys.executable


def test_term_then_quit_after_the_stop_timeout(tmp_path):
    proc, log = _start(tmp_path, "ignore-term", "--stop-timeout", "2")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 3, "the program's exit status must come through"
    events = dict(_events(log))
    assert events["SIGTERM"] - sent < 1.0
    assert 1.8 < events["SIGQUIT"] - events["SIGTERM"] < 3.5


def test_a_program_that_stops_in_time_gets_no_quit(tmp_path):
    proc, log = _start(tmp_path, "exit-on-term", "--stop-timeout", "2")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    time.sleep(2.5)  # the timer must have been cancelled, not fire at a recycled PID
    assert [name for name, _ in _events(log)] == ["START", "SIGTERM"]


def test_hup_is_passed_on(tmp_path):
    proc, log = _start(tmp_path, "exit-on-term", "--stop-timeout", "5")
    proc.send_signal(signal.SIGHUP)
    for _ in range(200):   # passed on, however slow the machine: then the stop
        if "SIGHUP" in log.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert [name for name, _ in _events(log)] == ["START", "SIGHUP", "SIGTERM"]
