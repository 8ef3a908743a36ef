"""What a running lab hands to its users: Ansible inventory, Molecule instance config, summary."""

import json
from pathlib import Path

from . import ssh
from .paths import LabPaths
from .topology import Topology


def instance_config(state: dict) -> list[dict]:
    """The list Molecule's delegated driver reads from ``instance_config.yml``."""
    return [
        {"instance": vm["name"], "address": "127.0.0.1", "port": vm["ssh_port"], "user": state["user"],
         "identity_file": state["key"], "become_method": "sudo"}
        for vm in state["vms"]
    ]


def inventory(state: dict, topology: Topology) -> dict:
    """A static Ansible inventory with the same groups and host vars as the Molecule one."""
    hosts = {
        vm["name"]: {"ansible_host": "127.0.0.1", "ansible_port": vm["ssh_port"],
                     "lab_private_address": vm["address"], "lab_release": vm.get("release", "bookworm")}
        for vm in state["vms"]
    }
    groups: dict[str, dict] = {}
    for machine in topology.machines:
        for group in machine.groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][machine.name] = None
    return {"all": {
        "vars": {
            "ansible_user": state["user"],
            "ansible_ssh_private_key_file": state["key"],
            "ansible_ssh_common_args": " ".join(ssh.OPTIONS),
            "ansible_python_interpreter": "/usr/bin/python3",
            "lab_private_network": topology.network,
        },
        "hosts": hosts,
        "children": groups,
    }}


def write(paths: LabPaths, state: dict, topology: Topology) -> None:
    import yaml  # see topology.load

    paths.state.write_text(json.dumps(state, indent=2) + "\n")
    paths.inventory.write_text(yaml.safe_dump(inventory(state, topology), sort_keys=False))


def summary(state: dict) -> str:
    lines = [f"lab '{state['name']}' is up ({state['accel']}, {state['boot_seconds']:.0f}s to SSH on all VMs):"]
    for vm in state["vms"]:
        lines.append(
            f"  {vm['name']:<10} {vm['address']:<12} ssh -i {state['key']} -p {vm['ssh_port']} "
            f"{state['user']}@127.0.0.1   ({vm.get('release', 'bookworm')}, boot to SSH {vm['boot_to_ssh']:.0f}s)"
        )
        for label, port in vm["forwards"].items():
            lines.append(f"  {'':<10} {label}: http://127.0.0.1:{port}/")
    lines.append(f"  inventory: {Path(state['inventory'])}")
    return "\n".join(lines)
