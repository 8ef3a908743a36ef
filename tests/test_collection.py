"""The roles ship as the Ansible collection celery_kit.deploy (ansible/galaxy.yml, ansible/meta/runtime.yml).

`ansible-galaxy collection build ansible/` makes the artifact and `ansible-galaxy collection install`
installs it, both into a temporary directory. What the tests prove:

- the artifact holds every file of the six roles (tasks, defaults, vars, handlers, templates, files,
  meta/argument_specs.yml), the filter plugins (plugins/filter/), the playbooks and the collection
  metadata, and nothing else: no inventory, no ansible.cfg, no build output, cache or *.retry, not
  the checkout's collections/ link back to ansible/, and none of the lab inventory's passwords in
  any file;
- the installed roles run by their FQCN from a directory outside the repository (collections path:
  the installed collection only; roles path: an empty directory, so the checkout's roles cannot be
  picked up): site.yml's preflight, one include_role per role, passes on valid input on this machine
  (connection local, --check) and refuses one bad value naming the variable, with the task names of
  celery_kit.deploy.celery_worker in the output;
- the preflight calls the collection's filters (plugins/filter/celery_kit.py: the celery_kit_*
  filters; plugins/filter/celery_worker.py: celery_worker_resolve) by FQCN, and the runs above
  find them in the installed collection with no filter_plugins setting (ANSIBLE_FILTER_PLUGINS is
  removed from the environment with every other ANSIBLE_* variable).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from roles_support import ANSIBLE_DIR, PREFLIGHT_VALID, REPO, ROLES, ROLES_DIR, wheelhouse_tar

BIN = Path(sys.executable).parent
NAMESPACE, NAME = "celery_kit", "deploy"
# What the artifact may hold at its top level; anything new under ansible/ needs a decision: ship it
# (add it here) or leave it out (build_ignore in ansible/galaxy.yml).
TOP_LEVEL = {"MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "meta", "plugins", "roles", "playbooks",
             "site.yml"}
PLAYBOOKS = ("remove.yml", "rollback.yml", "rotate-redis-password.yml")

# site.yml's preflight play, every role by its FQCN.
PREFLIGHT = """\
- name: Preflight of the collection's roles
  hosts: redis:celery_workers:celery_beat:flower
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Preflight for Redis
      ansible.builtin.include_role:
        name: celery_kit.deploy.celery_redis
        tasks_from: preflight
      when: inventory_hostname in groups['redis']

    - name: Preflight for the Celery hosts
      when: inventory_hostname in groups['celery_workers'] + groups['celery_beat'] + groups['flower']
      block:
        - name: Preflight for the common base
          ansible.builtin.include_role:
            name: celery_kit.deploy.celery_common
            tasks_from: preflight
            public: true
        - name: Preflight for supervisor
          ansible.builtin.include_role:
            name: celery_kit.deploy.celery_supervisor
            tasks_from: preflight
            public: true
        - name: Preflight for workers
          ansible.builtin.include_role:
            name: celery_kit.deploy.celery_worker
            tasks_from: preflight
        - name: Preflight for beat
          ansible.builtin.include_role:
            name: celery_kit.deploy.celery_beat
            tasks_from: preflight
        - name: Preflight for Flower
          ansible.builtin.include_role:
            name: celery_kit.deploy.celery_flower
            tasks_from: preflight
"""


def _run(*args: str, env: dict | None = None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(artifact, installed collections path), built and installed once for the module."""
    root = tmp_path_factory.mktemp("collection")
    result = _run(str(BIN / "ansible-galaxy"), "collection", "build", str(ANSIBLE_DIR), "--output-path", str(root),
                  cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    artifact = root / f"{NAMESPACE}-{NAME}-1.0.0.tar.gz"
    assert artifact.is_file(), result.stdout
    collections = root / "collections"
    result = _run(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(artifact),
                  "-p", str(collections), cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return artifact, collections


def _members(artifact: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(artifact) as tar:
        return {m.name: m for m in tar.getmembers()}


def _lab_secrets() -> list[str]:
    """The passwords the lab inventory sets in plain text (group_vars, host_vars)."""
    secrets = []
    inventory = ANSIBLE_DIR / "inventories" / "lab"
    for path in sorted([*inventory.glob("group_vars/*.yml"), *inventory.glob("host_vars/*.yml")]):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if "password" in key and isinstance(value, str) and value and "{{" not in value:
                secrets.append(value)
    return secrets


def test_the_artifact_holds_the_roles_and_the_playbooks(built):
    artifact, _ = built
    members = _members(artifact)
    with tarfile.open(artifact) as tar:
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())["collection_info"]
        runtime = yaml.safe_load(tar.extractfile("meta/runtime.yml"))
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (NAMESPACE, NAME, "1.0.0")
    assert manifest["dependencies"] == {}
    assert runtime["requires_ansible"] == ">=2.17.0"
    assert {name.split("/")[0] for name in members} == TOP_LEVEL

    role_files = sorted(str(p.relative_to(ANSIBLE_DIR)) for p in ROLES_DIR.rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert set(ROLES) == {"celery_beat", "celery_common", "celery_flower", "celery_redis", "celery_supervisor",
                          "celery_worker"}
    for must in ("roles/celery_common/files/release_seed.py", "roles/celery_worker/meta/argument_specs.yml",
                 "roles/celery_redis/templates/etc/redis/redis.conf.j2"):
        assert must in role_files
    assert [f for f in role_files if f not in members] == []
    plugin_files = sorted(str(p.relative_to(ANSIBLE_DIR)) for p in (ANSIBLE_DIR / "plugins").rglob("*.py"))
    assert plugin_files == ["plugins/filter/celery_kit.py", "plugins/filter/celery_worker.py"]
    assert [f for f in plugin_files if f not in members] == []
    for role in ROLES:
        assert f"roles/{role}/meta/argument_specs.yml" in members
    assert [p for p in PLAYBOOKS if f"playbooks/{p}" not in members] == []


def test_the_artifact_leaves_out_inventories_build_output_and_the_lab_passwords(built):
    artifact, _ = built
    members = _members(artifact)
    names = list(members)
    assert not [n for n in names if n.startswith("inventories") or "/inventories" in n]
    assert "ansible.cfg" not in names
    # The checkout's links back to ansible/ (its own celery_kit.deploy) stay out.
    assert not [n for n in names if n.split("/")[0] == "collections" or n.startswith("playbooks/collections")]
    unwanted = [n for n in names if n.endswith((".retry", ".pyc", ".tar", ".tar.gz", ".whl"))
                or "__pycache__" in n or any(part.startswith(".") for part in n.split("/"))]
    assert unwanted == []

    secrets = _lab_secrets()
    assert len(secrets) >= 3, "the lab inventory's passwords were not found: the pattern above is stale"
    leaks = []
    with tarfile.open(artifact) as tar:
        for member in tar.getmembers():
            if member.isfile():
                content = tar.extractfile(member).read()
                leaks += [(member.name, s) for s in secrets if s.encode() in content]
    assert leaks == []


def _preflight(tmp_path: Path, collections: Path, overrides: dict | None = None) -> subprocess.CompletedProcess:
    """site.yml's preflight of the installed roles, run from tmp_path with no access to the checkout."""
    play = tmp_path / "play"
    play.mkdir()
    assert REPO not in play.resolve().parents
    (play / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = False\n")
    (play / "empty-roles").mkdir()
    wheelhouse = wheelhouse_tar(play / "wheelhouse.tar")
    (play / "vars.yml").write_text(yaml.safe_dump(
        {"celery_common_wheelhouse_src": str(wheelhouse), **PREFLIGHT_VALID, **(overrides or {})}))
    node = {"node1": {"ansible_connection": "local"}}
    (play / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_python_interpreter": sys.executable},
        "children": {group: {"hosts": node} for group in ("redis", "celery_workers", "celery_beat", "flower")}}}))
    (play / "preflight.yml").write_text(PREFLIGHT)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(play / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_ROLES_PATH=str(play / "empty-roles"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0")
    return _run(str(BIN / "ansible-playbook"), "-i", "hosts.yml", "preflight.yml", "--check",
                "-e", "@vars.yml", env=env, cwd=play)


def test_valid_input_passes_the_preflight_of_the_installed_roles(built, tmp_path):
    _, collections = built
    result = _preflight(tmp_path, collections)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for role in ROLES:
        assert f"TASK [celery_kit.deploy.{role} : " in output, role
    assert "failed=0" in output


def test_a_bad_value_stops_the_preflight_of_the_installed_roles_naming_the_variable(built, tmp_path):
    """A queue name with a comma: celery_kit.deploy.celery_worker_resolve resolves the instance,
    celery_kit.deploy.celery_kit_invalid_names finds the bad name, the worker role's preflight names it."""
    _, collections = built
    result = _preflight(tmp_path, collections,
                        overrides={"celery_worker_instances": [{"name": "fast", "queues": ["high,default"]}]})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "celery_worker_instances[fast].queues: 'high,default'" in output, output[-4000:]
    assert "TASK [celery_kit.deploy.celery_worker : Check queue names]" in output


def test_the_installed_roles_find_their_filters_without_configuration(built, tmp_path):
    """The roles call their filters by FQCN; the installed collection's plugins/filter/ holds them. No
    filter_plugins anywhere: not in the roles, the play's ansible.cfg or the environment."""
    _, collections = built
    installed = collections / "ansible_collections" / NAMESPACE / NAME
    filters = sorted(p.name for p in (installed / "plugins" / "filter").glob("*.py"))
    assert filters == ["celery_kit.py", "celery_worker.py"]
    assert not list(installed.glob("roles/*/filter_plugins"))
    result = _preflight(tmp_path, collections)
    output = result.stdout + result.stderr
    assert "filter_plugins" not in (tmp_path / "play" / "ansible.cfg").read_text()
    assert "No filter named" not in output, output[-2000:]
    assert result.returncode == 0, output[-4000:]
