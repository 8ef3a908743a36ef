"""The lab's machines, read from a Molecule scenario file.

A scenario's ``molecule.yml`` is the single description of a topology: the
``platforms`` list gives names, inventory groups and host port forwards
(``lab_forwards: {flower: 5555}``, carried over SSH to the VM's private address), and
``provisioner.inventory.host_vars`` gives each machine's fixed ``lab_private_address``. ``make lab`` reads the
default scenario's file, so the lab and the tests boot the same machines.

A platform may name its Debian release (``lab_release: trixie``); the others boot the default
release (``$LAB_RELEASE``, else bookworm). One scenario may so mix Debian 12 and Debian 13 hosts,
each VM booted from its release's image (see ``images.py``).
"""

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    index: int
    name: str
    groups: tuple[str, ...]
    address: str
    forwards: dict[str, int] = field(default_factory=dict)
    memory_mb: int = 1024
    cpus: int = 1
    release: str = "bookworm"

    def mac(self, nic: int) -> str:
        """Stable MAC per machine and NIC, so the seed can match interfaces by it."""
        return f"52:54:00:77:{nic:02x}:{self.index + 10:02x}"


@dataclass(frozen=True)
class Topology:
    machines: tuple[Machine, ...]
    network: str

    def by_name(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)

    @property
    def releases(self) -> list[str]:
        """The Debian releases this topology boots, each once, in the order of first use."""
        return list(dict.fromkeys(m.release for m in self.machines))


RELEASE_NAME = re.compile(r"[a-z][a-z0-9-]*")


def default_release() -> str:
    return os.environ.get("LAB_RELEASE") or "bookworm"


def load(molecule_file: Path, default: str | None = None) -> Topology:
    import yaml  # only `up` needs PyYAML; `down` must work without the venv

    data = yaml.safe_load(Path(molecule_file).read_text())
    inventory = data.get("provisioner", {}).get("inventory", {})
    host_vars = inventory.get("host_vars", {})
    network = inventory.get("group_vars", {}).get("all", {}).get("lab_private_network", "10.77.0.0/24")
    net = ipaddress.ip_network(network)
    default = default or default_release()
    machines = []
    for index, platform in enumerate(data["platforms"]):
        name = platform["name"]
        address = host_vars.get(name, {}).get("lab_private_address")
        if not address or ipaddress.ip_address(address) not in net:
            raise SystemExit(f"{molecule_file}: host_vars.{name}.lab_private_address must be an address in {net}")
        release = str(platform.get("lab_release") or default)
        if not RELEASE_NAME.fullmatch(release):
            raise SystemExit(f"{molecule_file}: platforms[{name}].lab_release must be a Debian codename "
                             f"such as bookworm or trixie, not {release!r}")
        machines.append(
            Machine(
                index=index,
                name=name,
                groups=tuple(platform.get("groups", [])),
                address=address,
                forwards=dict(platform.get("lab_forwards", {})),
                memory_mb=int(platform.get("memory", 1024)),
                cpus=int(platform.get("cpus", 1)),
                release=release,
            )
        )
    if len({m.address for m in machines}) != len(machines):
        raise SystemExit(f"{molecule_file}: two machines share a lab_private_address")
    return Topology(machines=tuple(machines), network=str(net))
