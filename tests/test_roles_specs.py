"""Every role documents its inputs in meta/argument_specs.yml, and the spec matches defaults/main.yml."""
from __future__ import annotations

import re

import pytest
import yaml

from roles_support import ROLES, ROLES_DIR, ansible_playbook

EXPECTED_ROLES = {"celery_beat", "celery_common", "celery_flower", "celery_redis", "celery_supervisor", "celery_worker"}


def _entry_points(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def _spec(role: str) -> dict:
    return _entry_points(role)["main"]["options"]


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}


def test_all_roles_are_checked():
    assert set(ROLES) == EXPECTED_ROLES


@pytest.mark.parametrize("role", ROLES)
def test_spec_and_defaults_list_the_same_variables(role):
    """Every default is specified; every specified option has a default or is required, everywhere or
    (no default, its description says "Required on ...", preflight checks it there) only on some hosts:
    the Flower password on the hosts of the `flower` group, not where the role removes Flower."""
    spec, defaults = _spec(role), _defaults(role)
    required = {name for name, opt in spec.items()
                if opt.get("required") or ("default" not in opt and "Required on " in str(opt.get("description")))}
    assert set(defaults) == set(spec) - required, (
        f"only in defaults: {sorted(set(defaults) - set(spec))}, "
        f"only in spec: {sorted(set(spec) - required - set(defaults))}")
    assert not required & set(defaults), f"required options must not have a default: {required & set(defaults)}"


@pytest.mark.parametrize("role", ROLES)
def test_inputs_are_validated_by_the_entry_points_alone(role):
    """Ansible validates `main` when the role runs and `preflight` under `tasks_from: preflight`
    (site.yml's preflight play); both take the same options. No task validates a second time."""
    specs = _entry_points(role)
    assert {"main", "preflight"} <= set(specs)
    # Every other entry point has a task file of its name (celery_common's `service`).
    for entry in set(specs) - {"main", "preflight"}:
        assert (ROLES_DIR / role / "tasks" / f"{entry}.yml").exists(), entry
    assert specs["preflight"]["options"] == specs["main"]["options"]
    assert (ROLES_DIR / role / "tasks" / "preflight.yml").exists()
    for path in (ROLES_DIR / role / "tasks").glob("*.yml"):
        assert "validate_argument_spec" not in path.read_text(), path.name


def _role_includes(node):
    """Every include_role/import_role argument dict in a parsed playbook."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.split(".")[-1] in {"include_role", "import_role"} and isinstance(value, dict):
                yield value
            else:
                yield from _role_includes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _role_includes(item)


def test_playbooks_name_entry_points_as_ansible_looks_them_up():
    """Ansible picks the entry point by the literal tasks_from value: `tasks_from: preflight.yml` would
    run the checks of tasks/preflight.yml with no input validated at all."""
    playbooks = [*ROLES_DIR.parent.glob("*.yml"), *(ROLES_DIR.parent / "playbooks").glob("*.yml"),
                 *(ROLES_DIR.parents[1] / "molecule").glob("*/*.yml")]
    checked = 0
    for path in playbooks:
        for include in _role_includes(yaml.safe_load(path.read_text())):
            role, tasks_from = str(include.get("name", "")).split(".")[-1], include.get("tasks_from")
            if role not in ROLES or not tasks_from:
                continue
            entry_points = _entry_points(role)
            stem = tasks_from.removesuffix(".yml").removesuffix(".yaml")
            assert stem not in entry_points or tasks_from == stem, f"{path.name}: {role} tasks_from: {tasks_from}"
            checked += tasks_from in entry_points
    assert checked >= len(ROLES), "site.yml's preflight play reaches every role by its preflight entry point"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_defaults_main(role):
    spec, defaults = _spec(role), _defaults(role)
    for name, value in defaults.items():
        assert spec[name].get("default") == value, f"{name}: spec default {spec[name].get('default')!r} != {value!r}"


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_typed_and_described(role):
    for name, opt in _spec(role).items():
        assert opt.get("type") in {"str", "int", "bool", "list", "dict", "path"}, name
        assert opt.get("description"), f"{name} has no description"
        if opt["type"] == "list":
            assert "elements" in opt, f"{name}: list without elements type"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    for name in [*_spec(role), *_defaults(role)]:
        assert name.startswith(f"{role}_"), name


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_start_with_underscore_and_role_name(role):
    internal = yaml.safe_load((ROLES_DIR / role / "vars" / "main.yml").read_text()) or {}
    for name in internal:
        assert name.startswith(f"_{role}_"), name


@pytest.mark.parametrize("role", ROLES)
def test_registered_results_use_double_underscore(role):
    for path in (ROLES_DIR / role / "tasks").glob("*.yml"):
        for name in re.findall(r"^\s+register:\s+(\S+)", path.read_text(), flags=re.M):
            assert name.startswith(f"__{role}_"), f"{path.name}: {name}"


@pytest.mark.parametrize("role", ROLES)
def test_secrets_are_marked_no_log(role):
    for name, opt in _spec(role).items():
        if re.search(r"password|broker_url|result_backend", name):
            assert opt.get("no_log") is True, name


# Ansible's own variables the roles may read: configuration and magic variables, not host facts.
NOT_FACTS = {"ansible_managed", "ansible_check_mode", "ansible_version", "ansible_playbook_python",
             "ansible_host", "ansible_failed_result", "ansible_play_hosts", "ansible_play_batch",
             "ansible_loop", "ansible_index_var", "ansible_parent_role_names", "ansible_role_name"}


@pytest.mark.parametrize("role", ROLES)
def test_roles_read_no_facts(role):
    """site.yml gathers no facts (each gather costs seconds per host under emulation): a role that starts
    reading one must make its play gather again."""
    used = set()
    for path in (ROLES_DIR / role).rglob("*"):
        if path.is_file() and path.suffix in {".yml", ".j2"}:
            used |= {name for name in re.findall(r"\bansible_[a-z0-9_]+", path.read_text())
                     if name not in NOT_FACTS}
    assert not used, f"{role} reads host facts {sorted(used)}, which site.yml does not gather"


def test_service_layer_validates_a_service_description_before_any_task(tmp_path):
    """The roles include the service layer as `tasks_from: service`, so Ansible checks the
    description against celery_common's `service` entry point first and names the bad value."""
    for role in ("celery_worker", "celery_beat", "celery_flower"):
        assert re.search(r"tasks_from: service$", (ROLES_DIR / role / "tasks" / "main.yml").read_text(), re.M), role
    playbook = tmp_path / "service.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"ansible.builtin.include_role": {"name": "celery_kit.deploy.celery_common", "tasks_from": "service"},
                   "vars": {"celery_common_service": {"name": "celery-x", "state": "bogus",
                                                      "environment_file": "/x", "command": "/bin/true"}}}]}]))
    run = ansible_playbook("-i", "localhost,", "-c", "local", "--check", str(playbook))
    assert run.returncode != 0
    assert "arg spec 'service'" in run.stdout
    assert "value of state must be one of: present, absent, got: bogus" in run.stdout + run.stderr
