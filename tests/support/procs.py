"""Process management for the tests and the benchmarks (``bench/``): start real redis-server /
celery processes and always stop them; find processes, their descendants, their memory and CPU.

Every process runs in its own session so the whole group (a worker's pool children too)
is signalled on stop; ``stop`` escalates to SIGKILL, so nothing outlives a failed test or run.
Process trees, memory and CPU are read from /proc (Linux).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Proc:
    """A started process with its log file; ``stop()`` is idempotent."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})}, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group may outlive its leader (pool children)
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.alive():
            self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


def start_redis(log_dir: Path, port: int) -> Proc:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = Proc(f"redis-{port}", [server, "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", str(log_dir)], log_dir)
    wait_for_port(port)
    return proc


def celery_argv(*args: str) -> list[str]:
    return [str(VENV_BIN / "celery"), "-A", "app", *args]


def start_worker(log_dir: Path, name: str, queues: str, concurrency: int = 2,
                 env: dict | None = None, extra: tuple[str, ...] = ()) -> Proc:
    argv = celery_argv("worker", "-n", f"{name}@%h", "-Q", queues, "-c", str(concurrency),
                       "-l", "INFO", *extra)
    return Proc(f"worker-{name}", argv, log_dir, env={"CELERY_WORKER_QUEUES": queues, **(env or {})})


def wait_for_workers(app, names: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    wanted = set(names)
    seen: set[str] = set()
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        seen = {host.split("@")[0] for reply in replies for host in reply}
        if wanted <= seen:
            return
        time.sleep(0.3)
    raise TimeoutError(f"workers {sorted(wanted - seen)} did not answer ping within {timeout}s")


def pids_matching(pattern: str, timeout: float | None = None) -> list[int]:
    """PIDs whose full command line matches the regular expression ``pattern`` (``pgrep -f``).
    Raises ``OSError`` when pgrep cannot run, ``subprocess.TimeoutExpired`` after ``timeout``."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=timeout).stdout
    return [int(pid) for pid in out.split()]


def cmdline(pid: int) -> list[str]:
    """The argument vector a process was started with."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [os.fsdecode(arg) for arg in raw.split(b"\0")[:-1]]


def children(pid: int) -> list[int]:
    """Direct children of a process (of all its threads); none once it has gone."""
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` first, then every live descendant, depth first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def rss_kib_of(pid: int) -> int:
    """Resident memory of one process (KiB, ``VmRSS``); 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> dict:
    """Resident memory of a process and all its descendants (KiB)."""
    main = rss_kib_of(pid)
    child_rss = [rss_kib_of(c) for c in descendants(pid)[1:]]
    return {"main_kib": main, "children_kib": child_rss, "total_kib": main + sum(child_rss)}


def cpu_s(pid: int, tree: bool = True) -> float:
    """User + system CPU seconds of a process (and its live descendants)."""
    total = 0
    for p in descendants(pid) if tree else [pid]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / _CLOCK_TICKS
