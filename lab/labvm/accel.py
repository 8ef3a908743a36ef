"""Pick KVM or TCG.

/dev/kvm can exist and accept KVM_CREATE_VM while guests still hang right after
the kernel decompresses (nested setups without vmx/svm), so the only reliable
test is a short boot: KVM counts as working when the guest kernel reaches its
initrd within LAB_KVM_PROBE_SECONDS. The verdict is cached per host boot.
LAB_ACCEL=kvm|tcg forces a choice; LAB_ACCEL=auto (default) probes.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .paths import cache_dir

MARKER = "Run /init as init process"


def qemu_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def probe_kvm(image_dir: Path, seconds: float) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        console = Path(tmp) / "console.log"
        proc = subprocess.Popen(
            ["qemu-system-x86_64", *qemu_args("kvm"), "-m", "256", "-nodefaults", "-no-user-config",
             "-display", "none", "-no-reboot", "-serial", f"file:{console}",
             "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
             "-append", "console=ttyS0 panic=-1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and proc.poll() is None:
                if console.exists() and MARKER in console.read_text(errors="replace"):
                    return True
                time.sleep(0.25)
            return False
        finally:
            proc.kill()
            proc.wait()


def choose(image_dir: Path) -> str:
    wanted = os.environ.get("LAB_ACCEL", "auto")
    if wanted in ("kvm", "tcg"):
        return wanted
    if wanted != "auto":
        raise SystemExit(f"LAB_ACCEL must be kvm, tcg or auto, not {wanted!r}")
    cache = cache_dir() / "accel.json"
    key = {"boot_id": _boot_id(), "kernel": str(image_dir / "vmlinuz")}
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return cached["accel"]
    except (OSError, ValueError, KeyError):
        pass
    seconds = float(os.environ.get("LAB_KVM_PROBE_SECONDS", "20"))
    accel = "kvm" if probe_kvm(image_dir, seconds) else "tcg"
    print(f"lab: KVM probe (boot up to {seconds:.0f}s): using {accel}", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accel": accel}))
    return accel
