"""SSH host keys are checked in production; only the throw-away lab VMs turn the check off."""
from __future__ import annotations

import configparser
import re
import sys

from roles_support import ANSIBLE_DIR, REPO


def test_the_kits_ansible_cfg_keeps_host_key_checking_on():
    cfg = configparser.ConfigParser()
    cfg.read(ANSIBLE_DIR / "ansible.cfg")
    value = cfg.get("defaults", "host_key_checking", fallback="True")
    assert value.strip().lower() in {"true", "yes", "1"}, f"ansible.cfg sets host_key_checking = {value}"
    assert "StrictHostKeyChecking=no" not in (ANSIBLE_DIR / "ansible.cfg").read_text()


def test_make_lab_turns_host_key_checking_off_for_the_lab_only():
    lab_mk = (REPO / "lab" / "lab.mk").read_text()
    runs = [line for line in lab_mk.replace("\\\n", " ").splitlines() if "ansible-playbook" in line]
    assert runs, "lab.mk no longer runs ansible-playbook"
    for line in runs:
        assert "ANSIBLE_HOST_KEY_CHECKING=false" in line, line


def test_the_generated_lab_inventory_skips_host_keys():
    sys.path.insert(0, str(REPO / "lab"))
    try:
        from labvm import outputs, topology
    finally:
        sys.path.pop(0)
    topo = topology.load(REPO / "molecule" / "default" / "molecule.yml")
    state = {"user": "debian", "key": "/nonexistent/key",
             "vms": [{"name": m.name, "ssh_port": 2200 + i, "address": m.address}
                     for i, m in enumerate(topo.machines)]}
    inventory = outputs.inventory(state, topo)
    args = inventory["all"]["vars"]["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=no" in args and "UserKnownHostsFile=/dev/null" in args


def test_molecule_scenarios_reach_the_lab_without_the_kits_ansible_cfg():
    """Molecule writes its own ansible.cfg (host_key_checking off) and ssh options for the VMs."""
    from molecule import constants
    from molecule.driver.base import Driver
    assert constants.DEFAULT_ANSIBLE_CFG_OPTIONS["defaults"]["host_key_checking"] is False
    assert "-o StrictHostKeyChecking=no" in Driver._get_ssh_connection_options(None)
    sys.path.insert(0, str(REPO / "lab"))
    try:
        from labvm import topology
    finally:
        sys.path.pop(0)
    paths = sorted((REPO / "molecule").glob("*/molecule.yml"))
    assert paths and topology.base_config(paths[0]) == REPO / ".config" / "molecule" / "config.yml"
    for path in paths:
        scenario = topology.scenario_config(path)  # the base configuration merged in
        assert not (scenario.get("driver") or {}).get("ssh_connection_options"), path
        defaults = ((scenario.get("provisioner") or {}).get("config_options") or {}).get("defaults") or {}
        assert str(defaults.get("host_key_checking", False)).lower() in {"false", "0"}, path
        env = (scenario.get("provisioner") or {}).get("env") or {}
        assert not re.search(r"ANSIBLE_CONFIG", " ".join(env)), f"{path} points Molecule at another ansible.cfg"
