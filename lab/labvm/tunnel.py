"""Host ports on 127.0.0.1 forwarded to a VM's *private* address through its SSH.

Services such as Flower listen on the lab's private segment only (as they would in
production), so QEMU's user-mode port forwarding, which delivers to the guest's NAT
address, cannot reach them. An SSH local forward through the VM can: the connection
leaves the VM's sshd towards the private address, which the service's allow-list admits.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import proc, ssh


def start(run: Path, key: Path, user: str, vm: dict, host_port: int, guest_port: int) -> int:
    log = (run / f"{vm['name']}.tunnel.log").open("ab")
    proc = subprocess.Popen(
        ["ssh", *ssh.OPTIONS, "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
         "-i", str(key), "-p", str(vm["ssh_port"]), "-N",
         "-L", f"127.0.0.1:{host_port}:{vm['address']}:{guest_port}", f"{user}@127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SSH tunnel to {vm['name']} {vm['address']}:{guest_port} exited "
                               f"({proc.returncode}); see {run / (vm['name'] + '.tunnel.log')}")
        if ssh.listening(host_port):
            return proc.pid
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"SSH tunnel to {vm['name']} did not listen on 127.0.0.1:{host_port} within 15 s")


def pids_using(key: Path) -> list[int]:
    """PIDs of ssh tunnels started with this lab's key."""
    marker = str(key).encode()
    return proc.matching(lambda argv: argv[0].endswith(b"ssh") and marker in argv and b"-N" in argv)


def kill_all(key: Path) -> list[int]:
    pids = pids_using(key)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return pids
