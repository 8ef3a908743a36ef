"""Every role documents its inputs in meta/argument_specs.yml, and the spec matches defaults/main.yml."""
from __future__ import annotations

import re

import pytest
import yaml

from roles_support import ROLES, ROLES_DIR

EXPECTED_ROLES = {"celery_beat", "celery_common", "celery_flower", "celery_redis", "celery_supervisor", "celery_worker"}


def _spec(role: str) -> dict:
    data = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    return data["argument_specs"]["main"]["options"]


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
