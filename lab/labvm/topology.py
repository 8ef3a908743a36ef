"""The lab's machines, read from a Molecule scenario's configuration.

A scenario's configuration is its ``molecule.yml`` merged over the project's base configuration
(``.config/molecule/config.yml``) the way Molecule merges them (``scenario_config``); it is the single
description of a topology: the ``platforms`` list gives names, inventory groups and host port forwards
(``lab_forwards: {flower: 5555}``, carried over SSH to the VM's private address), and
``provisioner.inventory`` gives each machine's fixed ``lab_private_address`` (``host_vars``) and the
segment (``group_vars.all.lab_private_network``). The lab's own topology is the base's; ``make lab``
reads the default scenario, which keeps it, so the lab and the tests boot the same machines.

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


BASE_CONFIG = Path(".config") / "molecule" / "config.yml"


def merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` as Molecule merges its config files (molecule.util.merge_dicts):
    mappings key by key, anything else (lists included) replaced whole."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def base_config(molecule_file: Path) -> Path | None:
    """The base configuration Molecule merges under ``PROJECT/molecule/NAME/molecule.yml``: the
    project's ``.config/molecule/config.yml`` (Molecule looks for it at the repository root it runs
    in, the project directory). None for a file outside that layout or a project without one."""
    scenario_dir = Path(molecule_file).resolve().parent
    if scenario_dir.parent.name != "molecule":
        return None
    path = scenario_dir.parent.parent / BASE_CONFIG
    return path if path.is_file() else None


def scenario_config(molecule_file: Path) -> dict:
    """A scenario's configuration as Molecule reads it before its own defaults: the base
    configuration, then ``molecule_file`` merged over it. ``${VAR}`` references stay as written."""
    import yaml  # only `up` needs PyYAML; `down` must work without the venv

    data: dict = {}
    for path in filter(None, [base_config(molecule_file), Path(molecule_file)]):
        data = merge(data, yaml.safe_load(path.read_text()) or {})
    return data


def load(molecule_file: Path, default: str | None = None) -> Topology:
    data = scenario_config(molecule_file)
    inventory = data.get("provisioner", {}).get("inventory", {})
    host_vars = inventory.get("host_vars", {})
    network = inventory.get("group_vars", {}).get("all", {}).get("lab_private_network")
    if not network:
        raise SystemExit(f"{molecule_file}: provisioner.inventory.group_vars.all.lab_private_network must name "
                         "the lab's private segment")
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
