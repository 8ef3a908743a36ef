"""The controller-side wheelhouse check: every wheel must install on the host's Python and glibc.

A Debian 12 host runs CPython 3.11.2 on glibc 2.36, a Debian 13 host CPython 3.13.5 on glibc 2.41.
The preflight probe reads those from the host; celery_kit_wheelhouse_problems compares them with
the wheel tags in the wheelhouse (names only: an archive is listed, not unpacked).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ansible" / "plugins" / "filter"))

from celery_kit import (  # noqa: E402
    celery_kit_release_digest,
    celery_kit_wheelhouse_problems,
    celery_kit_wheelhouse_tags,
)

from roles_support import wheelhouse_tar  # noqa: E402

BOOKWORM = {"python": "3.11.2", "python_tag": "cp311", "implementation": "cpython", "libc": "glibc",
            "glibc": "2.36", "machine": "x86_64", "os": "Debian GNU/Linux 12 (bookworm)"}
TRIXIE = {**BOOKWORM, "python": "3.13.5", "python_tag": "cp313", "glibc": "2.41",
          "os": "Debian GNU/Linux 13 (trixie)"}

PURE = ("celery-5.7.0-py3-none-any.whl", "celery_kit_sample-1.0.0-py3-none-any.whl")
ABI3 = "tornado-6.6.1-cp39-abi3-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
CP311 = (*PURE, ABI3, "pydantic_core-2.50.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
CP313 = (*PURE, ABI3, "pydantic_core-2.50.4-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")


@pytest.fixture(params=["tar", "directory"])
def house(request, tmp_path):
    """Build a wheelhouse of the given wheel names, as an archive or as a directory."""
    def make(names):
        if request.param == "tar":
            return str(wheelhouse_tar(tmp_path / "wheelhouse.tar", tuple(names)))
        folder = tmp_path / "wheelhouse"
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"")
        return str(folder)
    return make


def test_a_wheelhouse_for_the_host_python_passes(house):
    assert celery_kit_wheelhouse_problems(house(CP311), BOOKWORM, "worker1") == []


def test_a_cp313_wheelhouse_passes_on_trixie(house):
    assert celery_kit_wheelhouse_problems(house(CP313), TRIXIE, "worker2") == []


def test_a_pure_wheelhouse_passes_on_both(house):
    path = house((*PURE, ABI3))
    assert celery_kit_wheelhouse_tags(path) == []
    assert celery_kit_wheelhouse_problems(path, BOOKWORM) == celery_kit_wheelhouse_problems(path, TRIXIE) == []


def test_a_bookworm_wheelhouse_is_refused_on_trixie_naming_host_python_and_tag(house):
    path = house(CP311)
    assert celery_kit_wheelhouse_tags(path) == ["cp311"]
    [problem] = celery_kit_wheelhouse_problems(path, TRIXIE, "worker2")
    assert problem.startswith(f"celery_common_wheelhouse_src: {path} is built for cp311, but worker2 runs "
                              f"Python 3.13.5 (cp313, glibc 2.41, x86_64, Debian GNU/Linux 13 (trixie))")
    assert "1 of its 4 wheels cannot install there (pydantic_core-2.50.4-cp311-cp311-" in problem
    assert "Build one for cp313" in problem


def test_a_trixie_wheelhouse_is_refused_on_bookworm(house):
    [problem] = celery_kit_wheelhouse_problems(house(CP313), BOOKWORM, "worker1")
    assert "is built for cp313, but worker1 runs Python 3.11.2 (cp311" in problem


def test_only_pure_or_manylinux_wheels_for_the_host_glibc(house):
    names = (*PURE, "psutil-7.0.0-cp311-cp311-linux_x86_64.whl",
             "orjson-3.11.0-cp311-cp311-manylinux_2_39_x86_64.whl",
             "yarl-1.20.0-cp311-cp311-musllinux_1_2_x86_64.whl",
             "ujson-5.10.0-cp311-cp311-manylinux_2_36_x86_64.whl")
    [problem] = celery_kit_wheelhouse_problems(house(names), BOOKWORM, "worker1")
    assert "3 of its 6 wheels cannot install there" in problem
    for refused in ("linux_x86_64.whl", "manylinux_2_39_x86_64.whl", "musllinux_1_2_x86_64.whl"):
        assert refused in problem
    assert "ujson" not in problem


def test_a_newer_glibc_takes_newer_manylinux_wheels(house):
    path = house((*PURE, "orjson-3.11.0-cp313-cp313-manylinux_2_39_x86_64.whl"))
    assert celery_kit_wheelhouse_problems(path, TRIXIE) == []  # glibc 2.41


def test_an_empty_or_unreadable_wheelhouse_is_refused(tmp_path):
    empty = wheelhouse_tar(tmp_path / "empty.tar", ())
    assert celery_kit_wheelhouse_problems(str(empty), BOOKWORM) == [
        f"celery_common_wheelhouse_src: {empty} holds no wheel (.whl)"]
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar archive")
    [problem] = celery_kit_wheelhouse_problems(str(garbage), BOOKWORM)
    assert "cannot be read as a wheelhouse" in problem


def test_a_host_without_glibc_or_cpython_is_refused(tmp_path):
    path = str(wheelhouse_tar(tmp_path / "w.tar", PURE))
    musl = {**BOOKWORM, "libc": "", "glibc": ""}
    assert "manylinux wheels need glibc" in celery_kit_wheelhouse_problems(path, musl)[0]
    assert "CPython only" in celery_kit_wheelhouse_problems(path, {**BOOKWORM, "implementation": "pypy"})[0]


def test_the_release_digest_covers_the_host_python(tmp_path):
    path = str(wheelhouse_tar(tmp_path / "w.tar", PURE))
    specs = ["celery-kit-sample==1.0.0"]
    cp311 = celery_kit_release_digest(path, specs, "wheelhouse", "cp311")
    assert cp311 == celery_kit_release_digest(path, specs, "wheelhouse", "cp311")
    assert cp311 != celery_kit_release_digest(path, specs, "wheelhouse", "cp313")
    index = [celery_kit_release_digest("", specs, "index", tag) for tag in ("cp311", "cp313")]
    assert index[0] != index[1]
