"""Reaching the VMs: free loopback ports, the lab key, waiting for sshd."""

import socket
import subprocess
import time
from pathlib import Path

OPTIONS = [
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
]


def free_port(preferred: int = 0) -> int:
    """A TCP port free on 127.0.0.1 right now (``preferred`` if it is)."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def keygen(key: Path, comment: str) -> Path:
    key.unlink(missing_ok=True)
    key.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], check=True)
    return key.with_suffix(".pub")


def ready(user: str, port: int, key: Path) -> bool:
    result = subprocess.run(
        ["ssh", *OPTIONS, "-i", str(key), "-p", str(port), f"{user}@127.0.0.1", "true"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    return result.returncode == 0


def wait(user: str, port: int, key: Path, deadline: float, still_running) -> bool:
    """Poll until sshd lets the lab user in; False on timeout or if the VM died.

    A bare TCP connect is not enough: QEMU's user-mode NAT accepts connections
    on the forwarded port long before the guest's sshd is listening.
    """
    while time.monotonic() < deadline:
        if ready(user, port, key):
            return True
        if not still_running():
            return False
        time.sleep(2)
    return False
