"""Bring a whole lab up or down.

``up`` always starts by tearing down whatever a previous run of the same lab
left (processes, taps, bridge, overlays), so an interrupted run never blocks
the next one. If ``up`` itself fails or is interrupted, it tears down again
before re-raising; console logs survive in ``<cache>/logs/<lab>/``.
"""

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from . import accel, net, outputs, qemu, seed, ssh, tunnel
from . import images as labimages
from .paths import LabPaths, cache_dir
from .topology import Topology


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def _stop_orphaned_up(paths: LabPaths) -> None:
    """Stop a `labctl up` of this lab that outlived its caller (e.g. an interrupted Molecule run).

    Left alone it would keep waiting for VMs and, on timeout, tear down the
    lab that a newer run has booted under the same name.
    """
    try:
        pid = int(paths.up_pid.read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if pid != os.getpid() and any(a.endswith(b"labctl") for a in argv) and paths.name.encode() in argv:
        log(f"{paths.name}: stopping an earlier `labctl up` (pid {pid})")
        os.kill(pid, signal.SIGKILL)


def down(paths: LabPaths) -> None:
    _stop_orphaned_up(paths)
    tunnel.kill_all(paths.key)
    killed = qemu.kill_all(paths.run)
    removed = net.remove(paths)
    if paths.run.exists():
        paths.logs.mkdir(parents=True, exist_ok=True)
        for console in paths.run.glob("*.log"):
            shutil.copy2(console, paths.logs / console.name)
        shutil.rmtree(paths.run)
    if killed or removed:
        log(f"{paths.name}: stopped {len(killed)} VM(s), removed {len(removed)} link(s)")


def _boot_all(paths: LabPaths, topology: Topology, image_dirs: dict[str, Path], accel_name: str, user: str) -> dict:
    pub = ssh.keygen(paths.key, f"lab-{paths.name}")
    taps = net.create(paths, len(topology.machines))
    preferred = int(os.environ.get("LAB_FLOWER_PORT", "15555"))
    pinned = seed.pinned_hosts(os.environ.get("LAB_PIN_HOSTS", "deb.debian.org").split())
    vms = []
    for machine, tap in zip(topology.machines, taps):
        image_dir = image_dirs[machine.name]
        qemu.overlay(image_dir / "base.qcow2", paths.run / f"{machine.name}.qcow2")
        seed.build(machine, topology, user, pub, pinned, paths.run / f"{machine.name}.seed.img")
        ssh_port = ssh.free_port()
        labelled = {label: ssh.free_port(preferred if label == "flower" else 0)
                    for label, _ in machine.forwards.items()}
        cmd = qemu.command(machine, paths.run, image_dir, accel_name, tap, {ssh_port: 22})
        qemu.start(cmd, paths.run / f"{machine.name}.qemu.log")
        vms.append({"name": machine.name, "address": machine.address, "release": machine.release,
                    "image": str(image_dir), "ssh_port": ssh_port,
                    "forwards": labelled, "guest_ports": dict(machine.forwards), "started": time.monotonic(),
                    "pid": int((paths.run / f"{machine.name}.pid").read_text())})
    return {"vms": vms}


def _wait_all(paths: LabPaths, vms: list[dict], user: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout

    def one(vm: dict) -> None:
        ok = ssh.wait(user, vm["ssh_port"], paths.key, deadline, lambda: qemu.alive(vm["pid"]))
        vm["boot_to_ssh"] = time.monotonic() - vm["started"] if ok else None
        if ok:
            log(f"{vm['name']}: SSH after {vm['boot_to_ssh']:.1f}s")

    threads = [threading.Thread(target=one, args=(vm,)) for vm in vms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [vm["name"] for vm in vms if vm["boot_to_ssh"] is None]
    if failed:
        for name in failed:
            console = paths.run / f"{name}.console.log"
            tail = console.read_text(errors="replace")[-3000:] if console.exists() else "(no console log)"
            log(f"{name} never answered SSH; console tail:\n{tail}")
        raise SystemExit(f"lab: {', '.join(failed)} not reachable within {timeout:.0f}s")


def up(paths: LabPaths, topology: Topology, images: dict[str, Path], user: str, timeout: float) -> dict:
    """Boot every machine of ``topology`` from the image of its release (``images``: release → directory)."""
    image_dirs = labimages.for_machines(topology, images)
    down(paths)
    start = time.monotonic()
    accel_name = accel.choose(image_dirs[topology.machines[0].name])
    paths.run.mkdir(parents=True)
    paths.up_pid.write_text(f"{os.getpid()}\n")
    try:
        state = _boot_all(paths, topology, image_dirs, accel_name, user)
        log(f"{paths.name}: started {len(state['vms'])} VM(s) with {accel_name}, waiting for SSH")
        _wait_all(paths, state["vms"], user, timeout)
        for vm in state["vms"]:
            for label, host_port in vm["forwards"].items():
                tunnel.start(paths.run, paths.key, user, vm, host_port, vm["guest_ports"][label])
    except BaseException:
        down(paths)
        raise
    finally:
        paths.up_pid.unlink(missing_ok=True)
    for vm in state["vms"]:
        del vm["started"]
    state.update(name=paths.name, user=user, key=str(paths.key), accel=accel_name,
                 images={release: str(d) for release, d in images.items() if release in topology.releases},
                 inventory=str(paths.inventory),
                 boot_seconds=time.monotonic() - start)
    outputs.write(paths, state, topology)
    with (cache_dir() / "timings.jsonl").open("a") as f:
        f.write(json.dumps({"lab": paths.name, "accel": accel_name, "at": time.strftime("%FT%TZ", time.gmtime()),
                            "boot_seconds": round(state["boot_seconds"], 1),
                            "boot_to_ssh": {vm["name"]: round(vm["boot_to_ssh"], 1) for vm in state["vms"]}})
                + "\n")
    return state
