"""The shipped unit files and configs: generated from the role templates, hardened, no secrets on argv.

Fast (no VM): renders the role templates with their defaults and compares with systemd/ and
deploy/, and scores every shipped unit with `systemd-analyze security --offline=true`.
"""
from __future__ import annotations

import filecmp
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from roles_support import REPO, ansible_playbook

SHIPPED_DIRS = ("systemd", "deploy", "monitoring/redis-exporter")
MAX_EXPOSURE = 1.5
UNITS = sorted((REPO / "systemd").glob("*.service"))


def _tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    result = ansible_playbook("render-defaults.yml", "-e", f"render_root={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("subdir", SHIPPED_DIRS)
def test_shipped_files_are_exactly_what_the_roles_render(rendered, subdir):
    """No hand-kept copies: regenerate with `ansible-playbook ansible/render-defaults.yml`."""
    want, have = _tree(rendered / subdir), _tree(REPO / subdir)
    assert sorted(have) == sorted(want), f"{subdir}/ lists other files than the roles render"
    drifted = [name for name in want if not filecmp.cmp(want[name], have[name], shallow=False)]
    assert not drifted, f"{subdir}/ differs from the role templates: {drifted}; rerun render-defaults.yml"


def test_every_role_template_is_shipped():
    """A new template must be added to render-defaults.yml, under a shipped directory, or it escapes
    the drift test."""
    play = yaml.safe_load((REPO / "ansible" / "render-defaults.yml").read_text())[0]
    files = play["vars"]["render_files"]
    listed = {(f["role"], f["src"]) for f in files}
    templates = {(p.relative_to(REPO / "ansible" / "roles").parts[0], str(p.relative_to(t)))
                 for t in (REPO / "ansible" / "roles").glob("*/templates") for p in t.rglob("*.j2")}
    assert templates <= listed, f"templates render-defaults.yml does not render: {sorted(templates - listed)}"
    outside = [f["dest"] for f in files if not f["dest"].startswith(tuple(d + "/" for d in SHIPPED_DIRS))]
    assert not outside, f"rendered outside {SHIPPED_DIRS}, so no drift test covers them: {outside}"


def _security(unit: Path) -> str:
    """systemd-analyze reads the unit with its drop-ins from the unit's directory, as systemd reads
    /etc/systemd/system: celery-.service.d/ (every celery-* unit) and UNIT.d/."""
    return subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, check=True).stdout


def _exposure(unit: Path) -> float:
    out = _security(unit)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    return float(match.group(1))


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="needs systemd-analyze (systemd >= 252)")


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_exposure_is_at_most_1_5(unit):
    assert _exposure(unit) <= MAX_EXPOSURE


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_the_hardening_is_the_shared_drop_in(unit, tmp_path):
    """Each unit alone, without celery-.service.d/, scores far above: the hardening is written once,
    in the drop-in, and the score above is the unit's with its drop-ins."""
    shutil.copy(unit, tmp_path / unit.name)
    own = REPO / "systemd" / f"{unit.name}.d"
    if own.is_dir():
        shutil.copytree(own, tmp_path / own.name)
    assert _exposure(tmp_path / unit.name) > MAX_EXPOSURE


@needs_analyze
def test_supervisord_keeps_chown_after_the_shared_filter():
    """supervisord chowns its socket: its @chown drop-in must come after the shared filter that
    removes @privileged (drop-ins apply in file-name order), or supervisord cannot start."""
    out = _security(REPO / "systemd" / "celery-supervisor.service")
    assert re.search(r"SystemCallFilter=~@privileged .*@privileged is included", out), out
    worker = _security(REPO / "systemd" / "celery-worker@.service")
    assert re.search(r"SystemCallFilter=~@privileged .*@privileged is not included", worker), worker


def test_no_unit_repeats_the_shared_hardening():
    shared = (REPO / "systemd" / "celery-.service.d" / "10-hardening.conf").read_text().splitlines()
    settings = {line for line in shared if "=" in line and not line.startswith("#")}
    assert len(settings) > 20
    for unit in UNITS:
        repeated = settings & set(unit.read_text().splitlines())
        assert not repeated, f"{unit.name} repeats {sorted(repeated)}"


def test_the_score_check_can_fail(tmp_path):
    """Guard against a parser that always passes: Celery's own example unit scores far above."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze")
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/bin/true\n")
    assert _exposure(bare) > MAX_EXPOSURE


def test_units_exist():
    assert {u.name for u in UNITS} == {"celery-worker@.service", "celery-worker-surge@.service", "celery-beat.service",
                                       "celery-flower.service", "celery-supervisor.service"}


def test_the_surge_unit_is_the_worker_unit_under_another_node_name():
    """A release's surge process must run exactly like its instance (same hardening, stop design,
    environment), consume as another node, and never start at boot."""
    worker = (REPO / "systemd" / "celery-worker@.service").read_text()
    surge = (REPO / "systemd" / "celery-worker-surge@.service").read_text()

    def body(text):
        return [line for line in text.splitlines()
                if line and not line.startswith(("#", "Description=", "[Install]", "WantedBy="))]
    assert [line.replace("%i-surge@", "%i@") for line in body(surge)] == body(worker)
    assert "--hostname=%i-surge@%%h" in surge
    assert "WantedBy=" not in surge


SECRET_VARS = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "FLOWER_BASIC_AUTH", "APP_REDIS_URL")


def _command_lines():
    for path in [*(REPO / "systemd").rglob("*"), *(REPO / "deploy").rglob("*.conf")]:
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.startswith(("ExecStart=", "ExecStop=", "ExecReload=", "command=")):
                    yield path.name, line


def test_no_secret_reaches_a_command_line():
    """Secrets travel in 0640 environment files; what is on argv shows in `ps` for every user."""
    lines = list(_command_lines())
    assert len(lines) >= 7
    for name, line in lines:
        for var in SECRET_VARS:
            assert var not in line, f"{name}: {line}"
        assert "CHANGE-ME" not in line and "--basic-auth" not in line and "--broker" not in line, f"{name}: {line}"


def test_secret_holding_files_say_so_and_shipped_placeholders_are_obvious():
    common = (REPO / "deploy/etc/celery/common.env").read_text()
    assert "CELERY_BROKER_URL='redis://celery:CHANGE-ME" in common
    assert "FLOWER_BASIC_AUTH='admin:CHANGE-ME" in (REPO / "deploy/etc/celery/flower.env").read_text()


def _unit(name: str) -> str:
    return (REPO / "systemd" / name).read_text()


def test_worker_stop_is_designed():
    """SIGTERM to the main process only, through celery-kit-exec's warm-then-cold stop."""
    unit = _unit("celery-worker@.service")
    assert "KillMode=mixed" in unit and "KillSignal=SIGTERM" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "celery-kit-exec --stop-timeout ${CELERY_WORKER_STOP_TIMEOUT} --" in exec_start
    assert "--queues=${CELERY_WORKER_QUEUES}" in exec_start
    dropin = (REPO / "systemd/celery-worker@default.service.d/10-stop-timeout.conf").read_text()
    env = (REPO / "deploy/etc/celery/worker-default.env").read_text()
    stop = int(re.search(r"CELERY_WORKER_STOP_TIMEOUT='(\d+)'", env).group(1))
    total = int(re.search(r"TimeoutStopSec=(\d+)", dropin).group(1))
    assert total > stop, "systemd must wait longer than the warm shutdown, or the cold one never runs"
    program = (REPO / "deploy/etc/celery/supervisor/conf.d/celery-worker-default.conf").read_text()
    assert "stopsignal=TERM" in program and "stopasgroup=false" in program and "killasgroup=true" in program
    assert f"stopwaitsecs={total}" in program and f"--stop-timeout {stop} " in program


def test_beat_keeps_its_schedule_in_a_state_directory():
    unit = _unit("celery-beat.service")
    assert "StateDirectory=celery-beat" in unit
    assert "--schedule=${STATE_DIRECTORY}/celerybeat-schedule" in unit


def _supervisor_command():
    spec = importlib.util.spec_from_file_location("celery_kit_filters", REPO / "ansible/plugins/filter/celery_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.celery_kit_supervisor_command


def test_a_command_is_written_once_and_supervisor_gets_it_resolved():
    """The service layer writes each command in ExecStart= syntax; a supervisor program must get the
    same argv: supervisor expands no ${NAME} and no %i, and reads % as its own expansion."""
    convert = _supervisor_command()
    env = {"CELERY_APP": "app", "OPTS": "--max-memory-per-child=50% -E", "Q": "a,b"}
    assert convert("celery -A ${CELERY_APP} worker --hostname=%i@%%h -Q ${Q} $OPTS", env, "fast") == \
        "celery -A app worker --hostname=fast@%%h -Q a,b --max-memory-per-child=50%% -E"
    assert convert("x $$HOME ${UNKNOWN} 100%%", env) == "x $HOME ${UNKNOWN} 100%%"
    # The shipped pair: the beat unit's ExecStart and its program's command run the same program.
    unit = next(line for line in _unit("celery-beat.service").splitlines() if line.startswith("ExecStart="))
    program = (REPO / "deploy/etc/celery/supervisor/conf.d/celery-beat.conf").read_text()
    command = next(line for line in program.splitlines() if line.startswith("command="))
    resolved = convert(unit.removeprefix("ExecStart="), {"CELERY_APP": "app", "CELERY_BEAT_LOGLEVEL": "INFO",
                                                         "STATE_DIRECTORY": "/var/lib/celery-beat"})
    assert command.endswith(" -- " + resolved), (command, resolved)
