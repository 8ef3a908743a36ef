"""A lab fleet may mix Debian releases: the image recipe, and which image each VM boots (no VM).

lab/build-image.sh names its output <release>-<flavour>-<hash>, the release being part of the
hash; `lab_release` on a Molecule platform picks the release of that VM, and labctl boots each VM
from its release's image.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from labvm import cli, images, lab, qemu, topology  # noqa: E402
from labvm.paths import LabPaths  # noqa: E402


def image_dir(cache: Path, **env: str) -> str:
    result = subprocess.run([str(REPO / "lab" / "build-image.sh"), "--dir"], capture_output=True, text=True,
                            env={**os.environ, "LAB_IMAGE_CACHE": str(cache), **env}, check=True)
    return result.stdout.strip()


def test_the_image_recipe_is_per_release(tmp_path):
    bookworm = image_dir(tmp_path, LAB_RELEASE="bookworm")
    trixie = image_dir(tmp_path, LAB_RELEASE="trixie")
    bare_trixie = image_dir(tmp_path, LAB_RELEASE="trixie", LAB_PRELOAD="")
    assert Path(bookworm).parent == tmp_path
    names = [Path(d).name for d in (bookworm, trixie, bare_trixie)]
    assert [n.rsplit("-", 1)[0] for n in names] == ["bookworm-preloaded", "trixie-preloaded", "trixie-bare"]
    hashes = [n.rsplit("-", 1)[1] for n in names]
    assert len(set(hashes)) == 3 and all(len(h) == 12 for h in hashes)
    # The same recipe always maps to the same directory; --dir builds nothing.
    assert image_dir(tmp_path, LAB_RELEASE="trixie") == trixie
    assert list(tmp_path.iterdir()) == []
    # Every name it gives is one images.release_of recognises.
    assert [images.release_of(Path(d), "x") for d in (bookworm, trixie, bare_trixie)] == ["bookworm", "trixie",
                                                                                           "trixie"]


def test_the_image_builder_refuses_a_release_that_is_no_codename(tmp_path):
    result = subprocess.run([str(REPO / "lab" / "build-image.sh"), "--dir"], capture_output=True, text=True,
                            env={**os.environ, "LAB_IMAGE_CACHE": str(tmp_path), "LAB_RELEASE": "../x"})
    assert result.returncode == 2 and "LAB_RELEASE must be a Debian codename" in result.stderr


MIXED = {
    "platforms": [
        {"name": "broker", "groups": ["redis"]},
        {"name": "node", "groups": ["celery_workers"], "lab_release": "trixie"},
        {"name": "extra", "groups": ["celery_workers"]},
    ],
    "provisioner": {"inventory": {"group_vars": {"all": {"lab_private_network": "10.77.0.0/24"}}, "host_vars": {
        "broker": {"lab_private_address": "10.77.0.10"},
        "node": {"lab_private_address": "10.77.0.11"},
        "extra": {"lab_private_address": "10.77.0.12"},
    }}},
}


@pytest.fixture
def mixed(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("LAB_RELEASE", raising=False)
    path = tmp_path / "molecule.yml"
    path.write_text(yaml.safe_dump(MIXED))
    return path


def test_platforms_name_their_release(mixed, monkeypatch):
    topo = topology.load(mixed)
    assert {m.name: m.release for m in topo.machines} == {"broker": "bookworm", "node": "trixie",
                                                          "extra": "bookworm"}
    assert topo.releases == ["bookworm", "trixie"]
    monkeypatch.setenv("LAB_RELEASE", "trixie")
    assert topology.load(mixed).releases == ["trixie"]


def test_a_release_that_is_no_codename_is_refused(mixed):
    data = yaml.safe_load(mixed.read_text())
    data["platforms"][1]["lab_release"] = "Trixie 13"
    mixed.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit, match=r"platforms\[node\].lab_release must be a Debian codename"):
        topology.load(mixed)


def test_image_dirs_are_given_per_release(tmp_path):
    parsed = images.parse(["trixie=/img/t", "/cache/bookworm-bare-0123456789ab/", "/elsewhere/img"], "sid")
    assert parsed == {"trixie": Path("/img/t"), "bookworm": Path("/cache/bookworm-bare-0123456789ab/"),
                      "sid": Path("/elsewhere/img")}
    with pytest.raises(SystemExit, match="two --image-dir values for trixie"):
        images.parse(["trixie=/a", "/c/trixie-preloaded-0123456789ab"], "bookworm")


def test_each_machine_gets_its_release_image_and_a_missing_one_is_named(mixed):
    topo = topology.load(mixed)
    both = {"bookworm": Path("/img/b"), "trixie": Path("/img/t")}
    assert images.for_machines(topo, both) == {"broker": Path("/img/b"), "node": Path("/img/t"),
                                               "extra": Path("/img/b")}
    with pytest.raises(SystemExit, match=r"no image for trixie \(platforms node\)"):
        images.for_machines(topo, {"bookworm": Path("/img/b")})


def test_boot_uses_each_machine_image(mixed, tmp_path, monkeypatch):
    """lab._boot_all with every side effect replaced: overlays and QEMU's -kernel follow the release."""
    monkeypatch.setenv("LAB_CACHE", str(tmp_path / "cache"))
    paths = LabPaths("t")
    paths.run.mkdir(parents=True)
    topo = topology.load(mixed)
    overlays, commands = {}, {}
    ports = iter(range(20000, 20100))
    monkeypatch.setattr(lab.ssh, "keygen", lambda key, comment: key.with_suffix(".pub"))
    monkeypatch.setattr(lab.ssh, "free_port", lambda preferred=0: next(ports))
    monkeypatch.setattr(lab.net, "create", lambda p, count: [f"tap{i}" for i in range(count)])
    monkeypatch.setattr(lab.seed, "pinned_hosts", lambda names: [])
    monkeypatch.setattr(lab.seed, "build", lambda *args: None)
    monkeypatch.setattr(lab.qemu, "overlay", lambda base, dest: overlays.setdefault(dest.stem, base))

    def start(cmd, log):
        name = cmd[cmd.index("-name") + 1].split(",")[0]
        commands[name] = cmd
        (paths.run / f"{name}.pid").write_text("4242\n")

    monkeypatch.setattr(lab.qemu, "start", start)
    dirs = images.for_machines(topo, {"bookworm": tmp_path / "bookworm-preloaded-0123456789ab",
                                      "trixie": tmp_path / "trixie-preloaded-0123456789ab"})
    state = lab._boot_all(paths, topo, dirs, "tcg", "debian")
    assert {n: b.parent.name for n, b in overlays.items()} == {
        "broker": "bookworm-preloaded-0123456789ab", "node": "trixie-preloaded-0123456789ab",
        "extra": "bookworm-preloaded-0123456789ab"}
    kernel = {n: Path(c[c.index("-kernel") + 1]).parent.name for n, c in commands.items()}
    assert kernel["node"] == "trixie-preloaded-0123456789ab" and kernel["broker"].startswith("bookworm-")
    assert [vm["release"] for vm in state["vms"]] == ["bookworm", "trixie", "bookworm"]
    cmd = qemu.command(topo.by_name("node"), paths.run, dirs["node"], "tcg", "tap1", {1: 22})
    assert cmd[cmd.index("-initrd") + 1].endswith("trixie-preloaded-0123456789ab/initrd.img")


def test_labctl_lists_and_builds_the_releases_a_scenario_boots(mixed, tmp_path, monkeypatch, capsys):
    assert cli.main(["releases", "--molecule-file", str(mixed)]) == 0
    assert capsys.readouterr().out.split() == ["bookworm", "trixie"]

    stub = tmp_path / "build-image.sh"
    stub.write_text('#!/bin/sh\necho "lab-image: cached" >&2\necho "/cache/$LAB_RELEASE-preloaded-0123456789ab"\n')
    stub.chmod(0o755)
    monkeypatch.setattr(images, "BUILD_SCRIPT", stub)
    assert cli.main(["images", "--molecule-file", str(mixed)]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == ["bookworm=/cache/bookworm-preloaded-0123456789ab", "trixie=/cache/trixie-preloaded-0123456789ab"]
    # What `labctl up` makes of those lines.
    assert images.parse(lines, "bookworm") == {"bookworm": Path("/cache/bookworm-preloaded-0123456789ab"),
                                               "trixie": Path("/cache/trixie-preloaded-0123456789ab")}


def test_the_lab_inventory_names_each_host_release():
    from labvm import outputs

    topo = topology.Topology(machines=(topology.Machine(0, "node", ("celery_workers",), "10.77.0.11",
                                                        release="trixie"),), network="10.77.0.0/24")
    state = {"user": "debian", "key": "/k", "vms": [{"name": "node", "ssh_port": 2222, "address": "10.77.0.11",
                                                     "release": "trixie"}]}
    inv = outputs.inventory(state, topo)
    assert inv["all"]["hosts"]["node"]["lab_release"] == "trixie"
    assert json.loads(json.dumps(inv))  # plain data, as written to inventory.yml
