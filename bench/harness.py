"""One benchmark session: a private redis-server, worker processes, producer-side apps.

Processes are started with ``tests/support/procs.py`` (own session per process, SIGKILL of the
whole group on stop), the process management the tests use too; ``python -m bench`` runs from the
checkout's root, which puts both ``bench`` and ``tests.support`` on the import path. Every process
goes on an ``ExitStack``; SIGTERM/SIGINT unwind it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import procs

ROOT = Path(__file__).resolve().parent.parent

# Bench tasks routed the way the kit routes similar work (CELERY_TASK_ROUTES is the kit's override).
KIT_ROUTES = ("bench.tasks.sleep1=long,bench.tasks.spin=long,bench.tasks.instant=high,"
              "bench.tasks.bulk_noop=low,bench.tasks.hold=low")
CELERY = str(procs.VENV_BIN / "celery")
WORKER_ROLE_DEFAULTS = ROOT / "ansible" / "roles" / "celery_worker" / "defaults" / "main.yml"
REDIS_ROLE_DEFAULTS = ROOT / "ansible" / "roles" / "celery_redis" / "defaults" / "main.yml"


def kit_worker_args() -> tuple[str, ...]:
    """The worker flags the celery_worker role adds to every instance by default (read from its
    defaults/main.yml, so the bench cannot drift from what the kit deploys): ``--task-events``
    when ``celery_worker_send_events`` is true, then ``celery_worker_extra_args``. Pool,
    concurrency and queues are the benchmark's own variables; prefetch and the per-child limits
    come from celeryconfig (see bench/README.md on the role's own defaults for those)."""
    import yaml
    defaults = yaml.safe_load(WORKER_ROLE_DEFAULTS.read_text())
    args = ["--task-events"] if defaults.get("celery_worker_send_events") else []
    return tuple(args + list(defaults.get("celery_worker_extra_args") or []))


def kit_redis_settings() -> dict[str, str]:
    """The AOF settings the celery_redis role ships (read from its defaults/main.yml, like
    ``kit_worker_args``): ``appendonly`` from ``celery_redis_appendonly``, ``appendfsync`` from
    ``celery_redis_appendfsync``. The role's RDB snapshots (``celery_redis_save``) are not taken
    over: the bench's redis-server keeps ``save ""``, so no BGSAVE fork lands in a measurement."""
    import yaml
    defaults = yaml.safe_load(REDIS_ROLE_DEFAULTS.read_text())
    return {"appendonly": "yes" if defaults.get("celery_redis_appendonly") else "no",
            "appendfsync": str(defaults.get("celery_redis_appendfsync") or "everysec")}


def filesystem(path: Path) -> dict:
    """Device and filesystem type of the mount that holds ``path`` (from /proc/mounts): where
    redis-server writes its AOF decides what ``appendfsync always`` costs (nothing on tmpfs)."""
    path = Path(path).resolve()
    best = {"path": str(path), "mount": None, "device": None, "fstype": None}
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, fstype = fields[0], fields[1].replace("\\040", " "), fields[2]
        if (path == Path(mount) or Path(mount) in path.parents) and len(mount) >= len(best["mount"] or ""):
            best.update(mount=mount, device=device, fstype=fstype)
    return best


def _scrub_env() -> None:
    for name in list(os.environ):
        if name.startswith(("CELERY_", "BENCH_")) or name == "APP_REDIS_URL":
            del os.environ[name]


class _Terminated(BaseException):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated(f"signal {signum}")


class Session:
    """Owns the redis-server and every worker; ``close()`` stops them all."""

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kit-bench-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.stack = contextlib.ExitStack()
        self.port = procs.free_port()
        _scrub_env()
        base = f"redis://127.0.0.1:{self.port}"
        # The producer side imports celeryconfig once; workers get their own URLs per run.
        os.environ.update({"CELERY_BROKER_URL": f"{base}/0", "CELERY_RESULT_BACKEND": f"{base}/1",
                           "APP_REDIS_URL": f"{base}/2", "CELERY_TASK_ROUTES": KIT_ROUTES})
        import celeryconfig  # noqa: F401  (reads the environment once, here)
        # Celery lets these two variables override any app's broker/backend; producers and workers
        # get explicit URLs per run instead.
        del os.environ["CELERY_BROKER_URL"], os.environ["CELERY_RESULT_BACKEND"]
        self.redis_proc = procs.start_redis(self.log_dir, self.port)
        self.stack.callback(self.redis_proc.stop)
        import redis
        self.redis = redis.Redis(port=self.port)
        self._clients: dict = {}
        self._n_workers = 0

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def db(self, db: int):
        import redis
        return redis.Redis(port=self.port, db=db)

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self.stack.close()

    # --- producer-side apps -------------------------------------------------------------
    def client(self, kind: str, dbs: tuple[int, int, int] = (0, 1, 2), conf: dict | None = None):
        """A producer app: ``kit`` is celeryconfig as shipped, ``vanilla`` Celery's defaults."""
        key = (kind, dbs, json.dumps(conf or {}, sort_keys=True))
        if key not in self._clients:
            from celery import Celery
            if kind == "kit":
                app = Celery(f"kit-producer-{len(self._clients)}", set_as_current=False)
                app.config_from_object("celeryconfig", force=True)
                # celeryconfig may have been imported before this session set CELERY_TASK_ROUTES
                # (the test suite imports it first): add the bench routes explicitly.
                routes = dict(app.conf.task_routes or {})
                for item in KIT_ROUTES.split(","):
                    pattern, _, queue = item.partition("=")
                    routes[pattern.strip()] = {"queue": queue.strip()}
                app.conf.update(broker_url=self.url(dbs[0]), result_backend=self.url(dbs[1]),
                                task_routes=routes)
            else:
                app = Celery(f"vanilla-producer-{len(self._clients)}", set_as_current=False, broker=self.url(dbs[0]),
                             backend=self.url(dbs[1]))
            app.conf.update(conf or {})
            self._clients[key] = app
        return self._clients[key]

    # --- workers ------------------------------------------------------------------------
    def worker_env(self, kind: str, queues: str, dbs=(0, 1, 2), env=None, conf=None) -> dict:
        out = {"PYTHONPATH": str(ROOT), "BENCH_REDIS_URL": self.url(dbs[2])}
        if kind == "kit":
            out.update({"CELERY_BROKER_URL": self.url(dbs[0]), "CELERY_RESULT_BACKEND": self.url(dbs[1]),
                        "APP_REDIS_URL": self.url(dbs[2]), "CELERY_TASK_ROUTES": KIT_ROUTES,
                        "CELERY_WORKER_QUEUES": queues})
        else:
            out.update({"BENCH_BROKER_URL": self.url(dbs[0]), "BENCH_RESULT_BACKEND": self.url(dbs[1])})
        if conf:
            out["BENCH_CONF"] = json.dumps(conf)
        out.update(env or {})
        return out

    def start_worker(self, kind: str, name: str, queues: str, concurrency: int, dbs=(0, 1, 2),
                     env=None, conf=None, pool: str = "prefork", extra: tuple[str, ...] = (),
                     role_args: bool = True):
        """``kind="kit"`` workers get the role's default flags (``kit_worker_args``) unless
        ``role_args`` is false; ``extra`` comes after them."""
        module = "bench.kitapp" if kind == "kit" else "bench.vanillaapp"
        self._n_workers += 1
        flags = [*(kit_worker_args() if kind == "kit" and role_args else ()), *extra]
        flags = list(dict.fromkeys(flags))  # a flag given twice is given once
        argv = [CELERY, "-A", module, "worker", "-n", f"{name}@%h", "-Q", queues, "-c", str(concurrency),
                "-P", pool, "-l", "WARNING", *flags]
        proc = procs.Proc(f"{self._n_workers:03d}-{kind}-{name}", argv, self.log_dir,
                          env=self.worker_env(kind, queues, dbs, env, conf))
        self.stack.callback(proc.stop, signal.SIGQUIT, 10.0)
        return proc

    def wait_ready(self, kind: str, names: list[str], dbs=(0, 1, 2), workers=(), timeout: float = 60.0):
        """Until every named worker answers ping. The bench gives each broker database only its own
        workers, so a ping returns as soon as ``len(names)`` replies are in instead of waiting out
        its whole timeout (which alone cost 1-2 s per worker start)."""
        app = self.client(kind, dbs)
        wanted, seen = set(names), set()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                replies = app.control.ping(timeout=0.5, limit=len(wanted)) or []
                seen = {host.split("@")[0] for reply in replies for host in reply}
                if wanted <= seen:
                    return
                time.sleep(0.1)
            raise TimeoutError(f"workers {sorted(wanted - seen)} did not answer ping within {timeout}s")
        except TimeoutError:
            for proc in workers:
                print(f"--- {proc.name} ---\n{proc.log()[-3000:]}", file=sys.stderr)
            raise

    @staticmethod
    def stop(workers) -> None:
        for proc in workers:
            proc.stop(signal.SIGQUIT, 10.0)

    # --- redis-server settings -----------------------------------------------------------
    def redis_settings(self, names) -> dict[str, str]:
        """Current values of redis-server parameters (``CONFIG GET``)."""
        return {name: self.redis.config_get(name).get(name) for name in names}

    def redis_config(self, settings: dict[str, str], timeout: float = 60.0) -> dict[str, str]:
        """Set redis-server parameters at run time (``CONFIG SET``) and return the values they
        replaced (pass them back to undo). The server starts with ``--appendonly no --save ""``
        (``tests/support/procs.py``); turning ``appendonly`` on starts an AOF rewrite, and this
        returns only when it has finished, so no measurement overlaps it."""
        current = self.redis_settings(settings)
        changed = {k: str(v) for k, v in settings.items() if current[k] != str(v)}
        for name, value in changed.items():
            self.redis.config_set(name, value)
        if changed:
            def idle():
                p = self.redis.info("persistence")
                return not p.get("aof_rewrite_in_progress") and not p.get("aof_rewrite_scheduled")
            if not wait_until(idle, timeout, 0.02):
                raise TimeoutError(f"redis-server AOF rewrite still running {timeout}s after {changed}")
        return {k: current[k] for k in changed}

    # --- redis measurements --------------------------------------------------------------
    def commandstats(self) -> dict[str, int]:
        info = self.redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    def redis_benchmark(self, requests: int) -> dict:
        """Simple-command ceiling of this redis-server: median ops/s over a few commands."""
        exe = shutil.which("redis-benchmark")
        if exe is None:
            return {"available": False}
        tests = "ping_mbulk,set,get,incr,lpush,rpop"
        out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(self.port), "-q", "-n", str(requests),
                              "-t", tests], capture_output=True, text=True, timeout=120).stdout
        per_cmd = {}
        for line in out.replace("\r", "\n").splitlines():
            if "requests per second" in line and ":" in line:
                name, rest = line.split(":", 1)
                per_cmd[name.strip()] = float(rest.split("requests per second")[0].split()[-1])
        self.redis.flushall()
        return {"available": True, "requests": requests, "ops_per_s": per_cmd,
                "median_ops_per_s": statistics.median(per_cmd.values()) if per_cmd else None}


@contextlib.contextmanager
def session(log_dir: Path | None = None):
    """A bench session; the process environment it rewrites (broker URLs, kit variables) is
    restored afterwards, so a caller such as the test suite keeps its own."""
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    saved_env = dict(os.environ)
    s = None
    try:
        s = Session(log_dir)
        yield s
    finally:
        if s is not None:
            s.close()
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, old_term)


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def pct(values, q: float):
    if not values:
        return None
    vals = sorted(values)
    k = (len(vals) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    """a / b, or None when either is missing (or b is 0)."""
    return a / b if a is not None and b else None
