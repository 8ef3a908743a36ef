"""The release checks and the readiness gate, run as the roles run them on a host.

``celery-kit-probe`` (rendered into deploy/opt/celery/bin/ from the role's template) decides
whether a new release may become ``current`` (``check``) and whether a handed-over worker counts
as up (``ready``); ``celery_kit_release_digest`` names the release directory. Real redis-server,
real workers (tests/conftest.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ansible" / "plugins" / "filter"))
from celery_kit import celery_kit_release_digest  # noqa: E402

from support import procs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "deploy" / "opt" / "celery" / "bin" / "celery-kit-probe"
PYTHON = str(procs.VENV_BIN / "python")


def _probe(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(PROBE), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_check_passes_for_the_sample_app(redis_server):
    out = _probe("check", "app")
    assert out.returncode == 0, out.stderr
    assert "broker answers" in out.stdout


def test_check_names_an_app_that_raises_at_import(redis_server, tmp_path):
    pkg = tmp_path / "brokenapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('raise RuntimeError("this build is broken at import")\n')
    out = _probe("check", "brokenapp", env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[0] == (
        "importing the app 'brokenapp' failed: RuntimeError: this build is broken at import")


def test_check_fails_when_the_broker_does_not_answer(redis_server):
    closed = procs.free_port()
    out = _probe("check", "app", env={"CELERY_BROKER_URL": f"redis://127.0.0.1:{closed}/0"})
    assert out.returncode == 1
    assert out.stderr.startswith("the broker did not answer")
    assert out.stdout == ""


def test_ready_when_the_node_consumes_all_its_queues(workers):
    out = _probe("ready", "app", "fast@%h", "30", env={"CELERY_WORKER_QUEUES": "high,default"})
    assert out.returncode == 0, out.stderr
    assert "ready, consuming default,high" in out.stdout


def test_not_ready_when_a_queue_is_missing(workers):
    out = _probe("ready", "app", "fast@%h", "3", env={"CELERY_WORKER_QUEUES": "high,default,long"})
    assert out.returncode == 1
    assert "consumes ['default', 'high'], expected ['default', 'high', 'long']" in out.stderr


def test_not_ready_when_the_node_does_not_answer(workers):
    out = _probe("ready", "app", "nobody@%h", "3", env={"CELERY_WORKER_QUEUES": "default"})
    assert out.returncode == 1
    assert "not ready after 3 s: no reply to inspect ping" in out.stderr


def _fake_systemctl(tmp_path: Path, state: str, result: str) -> str:
    """A PATH whose systemctl reports every unit in ``state`` with ``result``."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f"#!/bin/sh\nprintf 'ActiveState={state}\\nResult={result}\\n'\n")
    (fake / "systemctl").chmod(0o755)
    return f"{fake}:{os.environ['PATH']}"


def test_not_ready_at_once_when_systemd_gave_up_on_the_unit(workers, tmp_path):
    """A unit in start-limit-hit never becomes ready: the gate says so without waiting out its timeout."""
    env = {"CELERY_WORKER_QUEUES": "default", "PATH": _fake_systemctl(tmp_path, "failed", "start-limit-hit")}
    out = _probe("ready", "app", "nobody@%h", "60", "celery-worker-surge@fast.service", env=env)
    assert out.returncode == 1
    assert "not ready: celery-worker-surge@fast.service failed (start-limit-hit) after" in out.stderr
    assert "last: no reply to inspect ping" in out.stderr


def test_a_unit_still_starting_is_waited_for(workers, tmp_path):
    env = {"CELERY_WORKER_QUEUES": "high,default", "PATH": _fake_systemctl(tmp_path, "activating", "success")}
    out = _probe("ready", "app", "fast@%h", "30", "celery-worker@fast.service", env=env)
    assert out.returncode == 0, out.stderr


def test_the_release_digest_follows_the_content(tmp_path):
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"first build")
    (wheels / "b-2.0-py3-none-any.whl").write_bytes(b"dependency")
    specs = ["a==1.0"]
    first = celery_kit_release_digest(str(wheels), specs)
    assert celery_kit_release_digest(str(wheels), specs) == first
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"rebuilt under the same name")
    rebuilt = celery_kit_release_digest(str(wheels), specs)
    assert rebuilt != first
    assert celery_kit_release_digest(str(wheels), ["a==1.0", "extra==1"]) != rebuilt
    archive = tmp_path / "wheelhouse.tar"
    archive.write_bytes(b"tar bytes")
    assert celery_kit_release_digest(str(archive), specs) != celery_kit_release_digest(str(wheels), specs)
    assert celery_kit_release_digest("", specs, "index") == celery_kit_release_digest("", specs, "index")
