"""The role references (ansible/roles/*/README.md) are generated from meta/argument_specs.yml and current."""
from __future__ import annotations

import importlib.util
import shutil

import pytest
import yaml

from roles_support import REPO, ROLES, ROLES_DIR

_spec = importlib.util.spec_from_file_location("render_role_docs", REPO / "ansible" / "render_role_docs.py")
render_role_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_role_docs)


def _options(role: str) -> dict:
    spec = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def _rows(text: str) -> dict[str, list[str]]:
    """First-column name -> cells, for every table row of a rendered README."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows.setdefault(cells[0].strip("`"), cells[1:])
    return rows


@pytest.mark.parametrize("role", ROLES)
def test_readme_is_what_the_spec_renders(role):
    """Drift check: edit meta/argument_specs.yml, then run `make role-docs`."""
    readme = ROLES_DIR / role / "README.md"
    assert readme.exists(), f"{readme.relative_to(REPO)} missing: run make role-docs"
    assert readme.read_text() == render_role_docs.render(ROLES_DIR / role), (
        f"{readme.relative_to(REPO)} is stale: run make role-docs")


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_row_with_its_type_and_requirement(role):
    rows = _rows(render_role_docs.render(ROLES_DIR / role))
    for name, opt in _options(role).items():
        assert name in rows, f"{name} not rendered"
        kind, required, default, *_ = rows[name]
        assert kind.startswith(opt["type"]), (name, kind)
        assert required == ("yes" if opt.get("required") else "no"), name
        if "default" in opt and opt["default"] is not None:
            assert yaml.safe_load(default.strip("`")) == opt["default"], (name, default)
        for key in opt.get("options", {}):
            assert key in rows, f"{name}.{key} not rendered"


def test_values_are_rendered_as_yaml_would_read_them():
    """A choice "no" must not read as the boolean false; a secret says so; a required option has no default."""
    redis = _rows(render_role_docs.render(ROLES_DIR / "celery_redis"))
    assert "`'no'`" in redis["celery_redis_appendfsync"][3]
    assert redis["celery_redis_password"][1:3] == ["yes", "—"]
    assert "no_log" in redis["celery_redis_password"][4]


def test_instance_keys_name_the_role_variable_they_fall_back_to():
    rows = _rows(render_role_docs.render(ROLES_DIR / "celery_worker"))
    assert rows["pool"][2] == "`celery_worker_pool`"
    assert rows["autoscale"][2] == "unset"


def test_check_mode_fails_on_a_stale_readme_and_names_it(tmp_path, monkeypatch, capsys):
    roles = tmp_path / "ansible" / "roles"
    shutil.copytree(ROLES_DIR / "celery_beat" / "meta", roles / "celery_beat" / "meta")
    monkeypatch.setattr(render_role_docs, "ROLES_DIR", roles)
    assert render_role_docs.main(["--check"]) == 1
    assert "stale: ansible/roles/celery_beat/README.md" in capsys.readouterr().out
    assert render_role_docs.main([]) == 0
    assert render_role_docs.main(["--check"]) == 0


def test_the_role_table_links_every_reference():
    readme = (REPO / "README.md").read_text()
    for role in ROLES:
        assert f"](ansible/roles/{role}/README.md)" in readme, role
