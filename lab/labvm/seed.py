"""Per-machine seed disks.

Each VM boots the base image of its Debian release plus a tiny read-only ext4 disk labelled
LABSEED. The image's generic ``lab-seed.service`` runs the disk's ``apply``
script early in boot; that script gives the machine its identity: hostname,
/etc/hosts for every lab machine, the sudo user with the lab's public key, an
SSH host key, and systemd-networkd files for both NICs (matched by MAC).

The package mirror's name is pinned in /etc/hosts (resolved on the host when
the lab starts): QEMU's user-mode NAT relays each guest DNS query through a
fresh UDP socket bound to 0.0.0.0, which would be a lab socket on a
non-loopback address, and DNS over TCP is not available on every host.
"""

import shlex
import socket
import subprocess
import tempfile
from pathlib import Path

from .topology import Machine, Topology

# QEMU user-mode networking always hands out these addresses.
NAT_ADDRESS, NAT_GATEWAY, NAT_DNS = "10.0.2.15/24", "10.0.2.2", "10.0.2.3"

APPLY = """\
set -eu
echo {name} >/etc/hostname
echo {name} >/proc/sys/kernel/hostname
printf '%s\\n' '127.0.0.1 localhost' {hosts} '::1 localhost ip6-localhost ip6-loopback' >/etc/hosts
echo 'nameserver {dns}' >/etc/resolv.conf

mkdir -p /etc/systemd/network
printf '%s\\n' '[Match]' 'MACAddress={nat_mac}' '[Network]' 'Address={nat_address}' \\
  'Gateway={nat_gateway}' 'LinkLocalAddressing=no' 'IPv6AcceptRA=no' >/etc/systemd/network/10-nat.network
printf '%s\\n' '[Match]' 'MACAddress={lab_mac}' '[Network]' 'Address={lab_address}' \\
  'LinkLocalAddressing=no' 'IPv6AcceptRA=no' >/etc/systemd/network/20-lab.network

rm -f /etc/ssh/ssh_host_*
install -m 0600 "$SEED/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 0644 "$SEED/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
echo 'HostKey /etc/ssh/ssh_host_ed25519_key' >/etc/ssh/sshd_config.d/10-lab-hostkey.conf

id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups sudo {user}
install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh
install -m 0600 -o {user} -g {user} "$SEED/authorized_keys" /home/{user}/.ssh/authorized_keys
echo '{user} ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/90-lab-user
chmod 0440 /etc/sudoers.d/90-lab-user
"""


def pinned_hosts(names: list[str]) -> list[tuple[str, str]]:
    """IPv4 address of each name, as the host resolves it now."""
    pinned = []
    for name in names:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
        pinned.append((infos[0][4][0], name))
    return pinned


def apply_script(machine: Machine, topology: Topology, user: str, pinned: list[tuple[str, str]]) -> str:
    prefix = topology.network.split("/")[1]
    entries = [(m.address, m.name) for m in topology.machines] + pinned
    hosts = " ".join(shlex.quote(f"{addr} {name}") for addr, name in entries)
    return APPLY.format(
        name=shlex.quote(machine.name),
        hosts=hosts,
        dns=NAT_DNS,
        nat_mac=machine.mac(0),
        nat_address=NAT_ADDRESS,
        nat_gateway=NAT_GATEWAY,
        lab_mac=machine.mac(1),
        lab_address=f"{machine.address}/{prefix}",
        user=shlex.quote(user),
    )


def build(machine: Machine, topology: Topology, user: str, public_key: Path, pinned: list[tuple[str, str]],
          dest: Path) -> Path:
    """Write ``dest`` (a raw ext4 image) without mounting anything."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "apply").write_text(apply_script(machine, topology, user, pinned))
        (root / "authorized_keys").write_text(public_key.read_text())
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{machine.name}",
             "-f", str(root / "ssh_host_ed25519_key")],
            check=True,
        )
        dest.unlink(missing_ok=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "LABSEED", "-d", str(root), str(dest), "4M"],
                       check=True, stdout=subprocess.DEVNULL)
    return dest
