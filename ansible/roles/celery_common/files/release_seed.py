"""Plan a release build that starts from a copy of the running release's virtual environment.

Run by tasks/install_uv.yml with the host's /usr/bin/python3 (standard library only):

    release_seed.py CURRENT RELEASES_DIR WHEELHOUSES_DIR NEW_RELEASE_ID PYTHON_VERSION

Prints one JSON object: ``seed`` (the running release's venv to copy, or "" for a build from
scratch), ``why`` (the reason when there is no seed), ``reinstall`` (distributions whose wheel
differs between the two wheelhouses: new, another version, or the same file name with other bytes)
and ``uninstall`` (distributions the new wheelhouse no longer holds).

A copy is only planned when the result equals a build from scratch: the running release was built
from a wheelhouse that is still on the host, holds wheels only, and its venv is relocatable and made
by the same Python. Every distribution whose wheel is not byte for byte the one the running release
was built from is installed again; everything else is already in the copy, bytecode included.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

DISTRIBUTIONS = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheels(wheelhouse: Path) -> dict[str, set[tuple[str, str]]]:
    """Distribution name -> {(file name, sha256)} of the wheelhouse's wheels. Raises ValueError on
    a distribution that is not a wheel (an sdist is built at install time: not comparable)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(wheelhouse.iterdir()):
        if not path.is_file() or not path.name.endswith(DISTRIBUTIONS):
            continue
        if not path.name.endswith(".whl"):
            raise ValueError(f"{path.name} is not a wheel")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found.setdefault(normalized(path.name.split("-", 1)[0]), set()).add((path.name, digest))
    return found


def pyvenv_cfg(venv: Path) -> dict[str, str]:
    cfg = {}
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip()] = value.strip()
    return cfg


def plan(current: Path, releases: Path, wheelhouses: Path, new_id: str, python: str) -> dict:
    def scratch(why: str) -> dict:
        return {"seed": "", "why": why, "reinstall": [], "uninstall": []}

    if not current.is_symlink():
        return scratch("no release runs on this host yet")
    running = Path(os.path.realpath(current))
    if running.parent != Path(os.path.realpath(releases)) or running.name == new_id:
        return scratch(f"current points at {running}, not at another release")
    if not (running / "RELEASE").is_file():
        return scratch(f"{running} is not a finished release")
    venv = running / "venv"
    try:
        cfg = pyvenv_cfg(venv)
    except OSError as exc:
        return scratch(f"cannot read {venv}/pyvenv.cfg: {exc.strerror}")
    if cfg.get("relocatable") != "true":
        return scratch(f"{venv} is not relocatable")
    if cfg.get("version_info") != python:
        return scratch(f"{venv} was made by Python {cfg.get('version_info')}, the host has {python}")
    try:
        old = wheels(wheelhouses / running.name)
        new = wheels(wheelhouses / new_id)
    except FileNotFoundError as exc:
        return scratch(f"no wheelhouse at {exc.filename}")
    except ValueError as exc:
        return scratch(str(exc))
    return {"seed": str(venv), "why": "",
            "reinstall": sorted(name for name, files in new.items() if old.get(name) != files),
            "uninstall": sorted(set(old) - set(new))}


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    current, releases, wheelhouses, new_id, python = sys.argv[1:]
    print(json.dumps(plan(Path(current), Path(releases), Path(wheelhouses), new_id, python)))
