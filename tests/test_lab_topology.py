"""One lab topology: .config/molecule/config.yml, which every Molecule scenario inherits (no VM).

Molecule merges each molecule/*/molecule.yml over that base configuration; lab/labctl (so `make lab`),
lab/timed_molecule.py and molecule/shared/faults.py read a scenario the same way
(lab/labvm/topology.py: scenario_config). Ansible reads the private addresses from the inventory
directories a scenario links, which must then say the same.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from labvm import topology  # noqa: E402

SCENARIOS = sorted((REPO / "molecule").glob("*/molecule.yml"))


def test_every_scenario_inherits_the_base_configuration():
    assert [p.parent.name for p in SCENARIOS] == ["bare", "default", "smoke"]
    for path in SCENARIOS:
        assert topology.base_config(path) == REPO / ".config" / "molecule" / "config.yml"
        assert "driver" not in yaml.safe_load(path.read_text()), f"{path}: the driver is the base's"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.parent.name for p in SCENARIOS])
def test_labctl_reads_a_scenario_as_molecule_resolves_it(path, monkeypatch):
    """Molecule's own Config (base configuration found as `molecule` finds it, from the project root)
    against labvm's scenario_config: platforms, inventory, test sequence, playbooks and env."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # ansible-config
    monkeypatch.setenv("MOLECULE_PROJECT_DIRECTORY", str(REPO))
    from molecule import config, util

    base = util.lookup_config_file(".config/molecule/config.yml")
    assert base == str(REPO / ".config" / "molecule" / "config.yml")
    resolved = config.Config(str(path), args={"base_config": [base]}).config_data
    ours = topology.scenario_config(path)
    assert resolved["platforms"] == ours["platforms"]
    for key in ("group_vars", "host_vars", "links"):
        assert resolved["provisioner"]["inventory"][key] == ours["provisioner"]["inventory"].get(key, {}), key
    assert resolved["scenario"]["test_sequence"] == ours["scenario"]["test_sequence"]
    assert {k: v for k, v in resolved["ansible"]["playbooks"].items() if k in ours["provisioner"]["playbooks"]} \
        == ours["provisioner"]["playbooks"]
    env = {k: str(v).replace("${MOLECULE_PROJECT_DIRECTORY}", str(REPO))
           for k, v in ours["provisioner"]["env"].items()}
    assert resolved["ansible"]["env"] == env


def test_the_lab_is_the_base_topology_and_make_lab_boots_it():
    lab = topology.load(REPO / "molecule" / "default" / "molecule.yml")
    base = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
    assert [m.name for m in lab.machines] == [p["name"] for p in base["platforms"]]
    assert "platforms" not in yaml.safe_load((REPO / "molecule" / "default" / "molecule.yml").read_text())
    lab_mk = (REPO / "lab" / "lab.mk").read_text()
    assert "LAB_SCENARIO ?= default" in lab_mk and "--molecule-file molecule/$(LAB_SCENARIO)/molecule.yml" in lab_mk


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.parent.name for p in SCENARIOS])
def test_linked_inventories_give_ansible_the_addresses_labctl_boots(path):
    """With inventory links Molecule writes no inline vars: Ansible takes lab_private_address and
    lab_private_network from the linked directories, which must match the topology the VMs boot with."""
    lab = topology.load(path)
    links = topology.scenario_config(path)["provisioner"]["inventory"].get("links", {})
    if "host_vars" in links:
        host_vars = path.parent / links["host_vars"]
        for machine in lab.machines:
            values = yaml.safe_load((host_vars / f"{machine.name}.yml").read_text())
            assert values["lab_private_address"] == machine.address, (path.parent.name, machine.name)
    if "group_vars" in links:
        values = yaml.safe_load((path.parent / links["group_vars"] / "all.yml").read_text())
        assert values["lab_private_network"] == lab.network
    if not links:  # inline vars: Molecule writes the base's addresses for Ansible
        assert {m.name for m in lab.machines} <= set(topology.scenario_config(path)["provisioner"]["inventory"]
                                                      ["host_vars"])


def test_make_lab_inventory_gives_the_same_addresses():
    """`make lab` combines labctl's inventory with ansible/inventories/lab, whose host_vars/ win."""
    lab = topology.load(REPO / "molecule" / "default" / "molecule.yml")
    inventory = REPO / "ansible" / "inventories" / "lab"
    for machine in lab.machines:
        values = yaml.safe_load((inventory / "host_vars" / f"{machine.name}.yml").read_text())
        assert values["lab_private_address"] == machine.address, machine.name
    assert yaml.safe_load((inventory / "group_vars" / "all.yml").read_text())["lab_private_network"] == lab.network


def test_a_scenario_replaces_lists_and_merges_mappings(tmp_path):
    (tmp_path / ".config" / "molecule").mkdir(parents=True)
    (tmp_path / ".config" / "molecule" / "config.yml").write_text(yaml.safe_dump({
        "platforms": [{"name": "a"}, {"name": "b"}],
        "provisioner": {"env": {"X": "1", "Y": "2"},
                        "inventory": {"group_vars": {"all": {"lab_private_network": "192.0.2.0/24"}},
                                      "host_vars": {"a": {"lab_private_address": "192.0.2.10"},
                                                    "b": {"lab_private_address": "192.0.2.11"}}}}}))
    scenario = tmp_path / "molecule" / "one" / "molecule.yml"
    scenario.parent.mkdir(parents=True)
    scenario.write_text(yaml.safe_dump({
        "platforms": [{"name": "c"}],
        "provisioner": {"env": {"Y": "3"}, "inventory": {"host_vars": {"c": {"lab_private_address": "192.0.2.12"}}}}}))
    merged = topology.scenario_config(scenario)
    assert merged["platforms"] == [{"name": "c"}]
    assert merged["provisioner"]["env"] == {"X": "1", "Y": "3"}
    lab = topology.load(scenario)
    assert [(m.name, m.address) for m in lab.machines] == [("c", "192.0.2.12")] and lab.network == "192.0.2.0/24"
    # A file outside molecule/NAME/ has no base configuration, and the segment must then be given.
    alone = tmp_path / "molecule.yml"
    alone.write_text(yaml.safe_dump({"platforms": [{"name": "c"}]}))
    assert topology.base_config(alone) is None
    with pytest.raises(SystemExit, match="lab_private_network must name"):
        topology.load(alone)


def test_labctl_prints_the_hosts_and_the_tls_certificate_names_the_redis_hosts(tmp_path, capsys):
    """`labctl hosts` prints the topology; lab/redis-tls-certs.sh names the Redis hosts and their private
    addresses from it when given no names (make lab's TLS variant), so the certificate follows the topology."""
    from labvm import cli

    lab = topology.load(REPO / "molecule" / "default" / "molecule.yml")
    assert cli.main(["hosts"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m.name} {m.address}" for m in lab.machines]
    assert cli.main(["hosts", "--group", "redis"]) == 0
    redis = [m for m in lab.machines if "redis" in m.groups]
    assert redis and capsys.readouterr().out.splitlines() == [f"{m.name} {m.address}" for m in redis]
    done = subprocess.run(["bash", str(REPO / "lab" / "redis-tls-certs.sh"), str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "LAB_PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    san = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "redis.crt"), "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    wanted = [f"DNS:{m.name}" for m in redis] + [f"IP Address:{m.address}" for m in redis]
    assert all(w in san for w in wanted) and "IP Address:127.0.0.1" in san, san
