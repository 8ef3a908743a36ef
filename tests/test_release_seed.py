"""A release after the first starts from a copy of the running release's venv (celery_common's
tasks/install_uv.yml, planned by files/release_seed.py), and the result is the venv a build from
scratch makes: real uv, real wheels, the role's own tasks run by ansible-playbook on this machine.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from roles_support import ROLES_DIR, ansible_playbook

SEED = ROLES_DIR / "celery_common" / "files" / "release_seed.py"
UV = Path(sys.executable).parent / "uv"
HOST_PYTHON = subprocess.run(["/usr/bin/python3", "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()


def _seed_module():
    spec = importlib.util.spec_from_file_location("release_seed", SEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wheel(wheelhouse: Path, name: str, version: str, payload: str, requires: tuple[str, ...] = (),
               script: str = "") -> Path:
    """A pure-Python wheel ``name`` whose module holds ``payload`` (and, with ``script``, a console
    script of that name calling ``name:main``)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"PAYLOAD = {payload!r}\n\ndef main():\n    print(PAYLOAD)\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if script:
        files[f"{dist}/entry_points.txt"] = f"[console_scripts]\n{script} = {name}:main\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    out = wheelhouse / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return out


# The app 1.0 needs `shared` and `dropped`; the app 2.0 needs `shared` (rebuilt: same version, other
# bytes), `kept` (byte for byte the same) and `added`.
RELEASES = {
    "1.0-aaaa": {"kitapp": ("1.0", "app one", ("shared", "dropped", "kept")), "shared": ("1.0", "shared one", ()),
                 "dropped": ("1.0", "dropped", ()), "kept": ("1.0", "kept", ())},
    "2.0-bbbb": {"kitapp": ("2.0", "app two", ("shared", "added", "kept")), "shared": ("1.0", "shared two", ()),
                 "added": ("1.0", "added", ()), "kept": ("1.0", "kept", ())},
}


def wheelhouse(base: Path, release_id: str) -> Path:
    where = base / "wheelhouse" / release_id
    for name, (version, payload, requires) in RELEASES[release_id].items():
        make_wheel(where, name, version, payload, requires, script="kitapp" if name == "kitapp" else "")
    return where


def build(base: Path, release_id: str) -> subprocess.CompletedProcess:
    """Run the role's uv build for ``release_id`` as a play on this machine."""
    version = RELEASES[release_id]["kitapp"][0]
    play = [{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"ansible.builtin.include_role": {"name": "celery_common", "tasks_from": "install_uv.yml"},
                   "vars": {"celery_common_base_dir": str(base), "celery_common_uv_src": str(UV),
                            "celery_common_install_source": "wheelhouse",
                            "celery_common_packages": [f"kitapp=={version}"],
                            "_celery_common_release_id": release_id,
                            "_celery_common_target": {"python": HOST_PYTHON}}}],
    }]
    (base / "bin").mkdir(parents=True, exist_ok=True)
    playbook = base.parent / f"build-{release_id}.yml"
    playbook.write_text(json.dumps(play))
    return ansible_playbook("-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
                            str(playbook), "-v")


def said(result: subprocess.CompletedProcess) -> str:
    """The play's output with its line wrapping undone."""
    return " ".join(result.stdout.split())


def installed(venv: Path) -> dict[str, str]:
    out = subprocess.run([str(UV), "pip", "freeze", "--python", str(venv / "bin" / "python")],
                         capture_output=True, text=True, check=True, env=dict(os.environ, UV_NO_CONFIG="1")).stdout
    return dict(line.split("==") for line in out.split())


def payloads(venv: Path) -> dict[str, str]:
    code = ("import importlib, json, sys; "
            "print(json.dumps({n: importlib.import_module(n).PAYLOAD for n in sys.argv[1:]}))")
    names = sorted(installed(venv))
    return json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", code, *names],
                                     capture_output=True, text=True, check=True).stdout)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    base = tmp_path / "opt"
    for release_id in RELEASES:
        wheelhouse(base, release_id)
    return base


def first_release(base: Path) -> Path:
    result = build(base, "1.0-aaaa")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "built from scratch (no release runs on this host yet)" in said(result)
    release = base / "releases" / "1.0-aaaa"
    (release / "RELEASE").write_text("1.0-aaaa\n")
    (base / "current").symlink_to(release)
    return release


def test_the_next_release_is_a_copy_with_only_what_changed_installed_again(base: Path, tmp_path: Path) -> None:
    first = first_release(base)
    before = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}

    result = build(base, "2.0-bbbb")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (f"release 2.0-bbbb: a copy of {first}/venv, installing again: added, kitapp, shared; "
            "removing: dropped") in said(result)

    second = base / "releases" / "2.0-bbbb" / "venv"
    # What a build from scratch of the same wheelhouse holds.
    scratch = tmp_path / "scratch"
    subprocess.run([str(UV), "venv", "--quiet", "--python", "/usr/bin/python3", str(scratch)], check=True)
    subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(scratch / "bin" / "python"), "--no-index",
                    "--find-links", str(base / "wheelhouse" / "2.0-bbbb"), "kitapp==2.0"], check=True,
                   env=dict(os.environ, UV_NO_CONFIG="1", UV_NO_CACHE="1"))
    assert installed(second) == installed(scratch) == {"kitapp": "2.0", "shared": "1.0", "added": "1.0", "kept": "1.0"}
    # The rebuilt `shared` (same version, other bytes) is the new one, not the copy's.
    assert payloads(second) == payloads(scratch)
    assert payloads(second)["shared"] == "shared two"
    # The console script runs the new release's interpreter and code from its own directory.
    script = subprocess.run([str(second / "bin" / "kitapp")], capture_output=True, text=True)
    assert script.stdout.strip() == "app two", script.stderr
    # The running release is untouched.
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == before
    assert payloads(first / "venv")["kitapp"] == "app one"


def test_a_release_whose_wheelhouse_is_gone_is_built_from_scratch(base: Path) -> None:
    first_release(base)
    for wheel in (base / "wheelhouse" / "1.0-aaaa").iterdir():
        wheel.unlink()
    (base / "wheelhouse" / "1.0-aaaa").rmdir()
    result = build(base, "2.0-bbbb")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "release 2.0-bbbb: built from scratch (no wheelhouse at" in said(result)
    assert installed(base / "releases" / "2.0-bbbb" / "venv") == {"kitapp": "2.0", "shared": "1.0", "added": "1.0",
                                                                 "kept": "1.0"}


@pytest.mark.parametrize("change, why", [
    (lambda rel, base: (rel / "venv" / "pyvenv.cfg").write_text(
        (rel / "venv" / "pyvenv.cfg").read_text().replace("relocatable = true\n", "")), "is not relocatable"),
    (lambda rel, base: (rel / "venv" / "pyvenv.cfg").write_text(
        (rel / "venv" / "pyvenv.cfg").read_text().replace("version_info = ", "version_info = 9.")),
     "was made by Python 9."),
    (lambda rel, base: (rel / "RELEASE").unlink(), "is not a finished release"),
    (lambda rel, base: (base / "wheelhouse" / "1.0-aaaa" / "kept-1.0.tar.gz").write_bytes(b"sdist"),
     "kept-1.0.tar.gz is not a wheel"),
])
def test_the_plan_builds_from_scratch_when_a_copy_would_not_equal_it(base: Path, change, why: str) -> None:
    first = first_release(base)
    change(first, base)
    plan = _seed_module().plan(base / "current", base / "releases", base / "wheelhouse", "2.0-bbbb", HOST_PYTHON)
    assert plan["seed"] == "" and why in plan["why"], plan


def test_the_plan_without_a_running_release_builds_from_scratch(base: Path) -> None:
    plan = _seed_module().plan(base / "current", base / "releases", base / "wheelhouse", "1.0-aaaa", HOST_PYTHON)
    assert plan == {"seed": "", "why": "no release runs on this host yet", "reinstall": [], "uninstall": []}
