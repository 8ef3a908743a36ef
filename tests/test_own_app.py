"""Bring your own app: lab/build-wheelhouse.sh builds the offline wheelhouse of an app that is not
the sample, and that app installs from it with no index and runs its tasks on a real worker.

The app (tests/support/own_app.py, ``parcel``) has its own package, its own environment variables
for broker and backend, Celery's default queue and none of the kit's configuration. Its wheelhouse
is built for Debian 12 (cp311) with the documented command, downloading from PyPI; the install is
the roles' own (``pip install --no-index --find-links WHEELHOUSE SPEC`` in a fresh venv).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from support import procs
from support.own_app import kit_pins, write_own_app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "lab" / "build-wheelhouse.sh"


def build(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def parcel(tmp_path_factory):
    """The parcel project and its cp311 wheelhouse, built as docs/own-app.md says."""
    work = tmp_path_factory.mktemp("own-app")
    app = write_own_app(work / "parcel")
    result = build("--project", "parcel", "--out", "wheelhouses", "cp311", cwd=work)
    assert result.returncode == 0, result.stderr
    return app, work / "wheelhouses", result


def test_the_wheelhouse_holds_the_app_its_dependencies_and_the_targets_extras(parcel):
    app, out, result = parcel
    assert result.stdout == f"{app.spec}\n"  # what celery_common_packages lists
    with tarfile.open(out / "wheelhouse-cp311.tar") as tar:
        names = tar.getnames()
    assert {name.split("/")[0] for name in names} == {"wheelhouse"}
    files = {name.removeprefix("wheelhouse/") for name in names}
    assert app.wheel in files
    assert "celery-5.7.0-py3-none-any.whl" in files and "requirements.txt" in files
    assert not [name for name in files if name.startswith(("celery_kit_sample", "flower"))]
    # redis needs async-timeout on Python < 3.11.3 only: the controller's pip skips it, Debian 12's
    # 3.11.2 needs it, so it is added and pinned.
    assert [name for name in files if name.startswith("async_timeout-")]
    requirements = (out / "wheelhouse-cp311" / "requirements.txt").read_text()
    assert requirements.startswith(app.requirements.read_text())
    assert "# Added by lab/build-wheelhouse.sh: required by environment markers on Python 3.11.2\nasync-timeout==" \
        in requirements


def test_the_app_installs_offline_and_a_worker_runs_its_tasks(parcel, tmp_path, redis_server, log_dir):
    app, out, _ = parcel
    with tarfile.open(out / "wheelhouse-cp311.tar") as tar:
        tar.extractall(tmp_path, filter="data")
    wheelhouse = tmp_path / "wheelhouse"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # As celery_common's install.yml runs it: the package specs, no index, the wheelhouse.
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-index", "--find-links", str(wheelhouse), app.spec], check=True, timeout=180)

    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {item["name"].lower(): item["version"] for item in json.loads(listed)}
    assert installed[app.dist] == app.version
    assert {name: installed[name] for name in kit_pins()} == kit_pins()  # the requirements' pins won

    # Away from the project, so the app is imported from the venv.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Celery prefers CELERY_BROKER_URL and CELERY_RESULT_BACKEND (the kit's, set for this test
    # session) to the app's settings: emptied, the app's own variables decide.
    env = {app.broker_env: f"{redis_server}/5", app.backend_env: f"{redis_server}/6",
           "CELERY_BROKER_URL": "", "CELERY_RESULT_BACKEND": ""}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {app.package}; print({app.package}.__file__)"],
                           cwd=run_dir, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))

    worker = procs.Proc("worker-parcel", [str(venv / "bin" / "celery"), "-A", app.app, "worker", "-n", "parcel@%h",
                                          "-c", "2", "-l", "INFO"], log_dir, env=env)
    try:
        _wait_ready(worker)
        check = subprocess.run([str(venv / "bin" / "python"), "-m", app.check, "20", "--timeout", "30"],
                               cwd=run_dir, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert json.loads(check.stdout) == {"sent": 20, "done": 20, "results_ok": True}
        log = worker.log()
        assert f". {app.task}" in log  # registered
        assert f".> {app.queue} " in log  # consumed
        assert f"{redis_server.removeprefix('redis://')}/5" in log  # the broker of app.broker_env
    finally:
        worker.stop()


def _wait_ready(worker: procs.Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in worker.log():
            return
        if not worker.alive():
            raise AssertionError(f"the worker exited:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"the worker was not ready within {timeout}s:\n{worker.log()[-3000:]}")


@pytest.mark.parametrize("case", ["no project", "no requirements", "no wheel", "unknown tag", "editable"])
def test_bad_input_is_refused_by_name_before_anything_is_written(case, tmp_path):
    project = write_own_app(tmp_path / "parcel").root
    args, named = {
        "no project": (["--project", "nowhere"], "--project nowhere: no such directory"),
        "no requirements": (["--project", "parcel", "--requirements", "lock.txt"],
                            "--requirements lock.txt: no such file"),
        "no wheel": (["--project", "parcel"], f"--project {project}: pip wheel could not build a wheel from it"),
        "unknown tag": (["--project", "parcel", "cp399"], "unknown target cp399: give TARGET_PYTHON_VERSION"),
        "editable": (["--project", "parcel", "--requirements", "editable.txt"],
                     f"{tmp_path}/editable.txt:2: '-e .': an editable install cannot come from a wheelhouse"),
    }[case]
    if case == "no wheel":  # a build backend that does not exist
        (project / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "no_such_backend"\n')
    (tmp_path / "editable.txt").write_text("-r parcel/requirements.txt\n-e .\n")
    result = build(*args, "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert f"wheelhouse: {named}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_includes_are_inlined_and_index_options_left_out(tmp_path):
    (tmp_path / "base.txt").write_text("kombu==5.7.0  # the broker client\n")
    lock = tmp_path / "lock.txt"
    lock.write_text("--index-url https://user:token@pypi.example/simple\n-r base.txt\n"
                    "celery[redis]==5.7.0 \\\n    --hash=sha256:00\n")
    flat = subprocess.run([sys.executable, str(REPO / "lab" / "wheelhouse_closure.py"), "--flatten", str(lock)],
                          capture_output=True, text=True, check=True).stdout
    assert flat == (f"# -r base.txt ({lock}:2):\nkombu==5.7.0  # the broker client\n"
                    "celery[redis]==5.7.0 \\\n    --hash=sha256:00\n")
