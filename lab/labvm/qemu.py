"""Start and stop one lab VM.

Every QEMU process gets its run directory on its command line (pidfile,
overlay, console log), so teardown can find processes a crashed run left
behind by that path alone, without a pidfile, and without touching any other
QEMU on the machine.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import accel, proc
from .topology import Machine

# Minimal kernel command line: no fsck (throw-away overlays), no CPU-bug
# mitigations (page-table isolation is expensive under TCG; these VMs only ever
# run the lab's own code), `lab.seed` enables lab-seed.service. On a busy
# 2-core host, udev coldplug under TCG can outlast systemd's 90 s default for
# devices (the seed disk, ttyS0), hence the longer start timeout.
CMDLINE = (
    "root=/dev/vda rw console=ttyS0 quiet fsck.mode=skip mitigations=off"
    " systemd.default_timeout_start_sec=900 lab.seed systemd.hostname={name}"
)


def overlay(base: Path, dest: Path) -> Path:
    dest.unlink(missing_ok=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(dest)],
        check=True,
    )
    return dest


def command(machine: Machine, run: Path, image_dir: Path, accel_name: str, tap: str,
            forwards: dict[int, int]) -> list[str]:
    """``forwards`` maps host port (bound to 127.0.0.1) to guest port."""
    hostfwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in forwards.items())
    return [
        "qemu-system-x86_64",
        "-name", f"{machine.name},process=lab-{machine.name}",
        "-machine", "q35", *accel.qemu_args(accel_name),
        "-smp", str(machine.cpus), "-m", str(machine.memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
        "-serial", f"file:{run / (machine.name + '.console.log')}",
        "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
        "-append", CMDLINE.format(name=machine.name),
        "-drive", f"file={run / (machine.name + '.qcow2')},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-drive", f"file={run / (machine.name + '.seed.img')},if=virtio,format=raw,readonly=on",
        "-netdev", f"user,id=nat{hostfwd}",
        "-device", f"virtio-net-pci,netdev=nat,mac={machine.mac(0)}",
        "-netdev", f"tap,id=lab,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=lab,mac={machine.mac(1)}",
        "-object", "rng-random,id=rng,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng",
        "-pidfile", str(run / (machine.name + ".pid")),
        "-daemonize",
    ]


def every_cpu() -> None:
    """Let this process run on every CPU of the machine. A parent may have pinned itself (Mitogen
    pins Ansible's processes, and children inherit the mask): four VMs pinned to one core of two
    boot and run at half speed."""
    os.sched_setaffinity(0, range(os.cpu_count() or 1))


def start(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, preexec_fn=every_cpu)


def pids_using(run: Path) -> list[int]:
    """PIDs of QEMU processes whose command line mentions ``run``."""
    marker = str(run).encode() + b"/"
    return proc.matching(lambda argv: argv[0].endswith(b"qemu-system-x86_64") and any(marker in a for a in argv))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_all(run: Path, grace: float = 3.0) -> list[int]:
    pids = pids_using(run)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return pids
