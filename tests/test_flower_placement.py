"""Flower runs only on the hosts of the `flower` group: site.yml, applied to a Celery host outside it,
stops Flower there and removes its unit, supervisor program and environment file (the password).

Runs the real site.yml against this machine (connection local), restricted to the Flower role
(`--tags flower --skip-tags common,supervisor`; the preflight play still runs), once for real and
once with --check. Two hosts outside `flower` still carry Flower from an earlier inventory: node2
under systemd, node3 under supervisor, each with its own configuration directory (a temporary one)
holding `flower.env` and the supervisor program. Both see an enabled `celery-flower.service` in
/etc/systemd/system, an empty tmpfs in a private mount namespace (unshare -m) that vanishes with
it. `systemctl` and `supervisorctl` are stand-ins first on PATH that record their arguments and
report Flower as running: this machine's systemd is not touched (and need not run). Neither host
defines the Flower password: outside `flower` it is not needed. A host outside `flower` without
any Flower, in --check, is node2 of tests/test_roles_check_mode.py.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from roles_support import ANSIBLE_DIR, wheelhouse_tar

FLOWER_PASSWORD = "Kit-Secret-old-flower-pw-17"
REDIS_PASSWORD = "Kit-Secret-redis-pw-23"
UNIT = "celery-flower.service"
SYSTEMD_DIR = "/etc/systemd/system"
HOSTS = {"node2": "systemd", "node3": "supervisor"}

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$KIT_FAKE_LOG.systemctl"
case "$1" in
  show) printf 'Id=%s\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nUnitFileState=enabled\\n' "$2" ;;
  is-enabled) echo enabled ;;
esac
exit 0
"""
FAKE_SUPERVISORCTL = """#!/bin/sh
echo "$*" >> "$KIT_FAKE_LOG.supervisorctl"
echo "celery-flower: stopped"
echo "celery-flower: removed process group"
"""

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                reason="needs root and unshare(1) for a private mount namespace")


class Run:
    def __init__(self, root: Path, done: subprocess.CompletedProcess, config_dirs: dict[str, Path]):
        self.output = done.stdout + done.stderr
        self.returncode = done.returncode
        self.config_dirs = config_dirs
        self.systemctl = _lines(root / "fake.systemctl")
        self.supervisorctl = _lines(root / "fake.supervisorctl")
        self.unit_dir_after = _lines(root / "unit-dir-after")

    def task(self, header: str) -> str:
        """The output of the first task or handler whose header starts with `header`."""
        match = re.search(re.escape(header) + r".*?\n(.*?)(?=\n(?:TASK|RUNNING HANDLER|PLAY) \[|\Z)", self.output, re.S)
        assert match, f"{header!r} did not run:\n{self.output[-4000:]}"
        return match.group(1)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _run(root: Path, *args: str) -> Run:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"vars": local, "children": {
        "celery_workers": {"hosts": {"node1": {}, "node2": {}, "node3": {}}},
        "celery_beat": {"hosts": {"node1": {}}},
        "flower": {"hosts": {"node1": {}}},
    }}}
    values = {
        "celery_common_wheelhouse_src": str(wheelhouse_tar(root / "wheelhouse.tar")),
        "celery_common_broker_url": f"redis://celery:{quote(REDIS_PASSWORD, safe='')}@127.0.0.1:6379/0",
        "celery_common_app_queues": ["default"],
        "celery_worker_instances": [{"name": "fast", "queues": ["default"]}],
    }
    (root / "group_vars").mkdir()
    (root / "group_vars" / "all.yml").write_text(yaml.safe_dump(values))
    (root / "host_vars").mkdir()
    config_dirs = {}
    for host, manager in HOSTS.items():
        config = root / host / "etc-celery"
        (config / "supervisor" / "conf.d").mkdir(parents=True)
        (config / "flower.env").write_text(f"FLOWER_BASIC_AUTH='admin:{FLOWER_PASSWORD}'\n")
        (config / "supervisor" / "conf.d" / "celery-flower.conf").write_text("[program:celery-flower]\n")
        (root / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump({
            "celery_common_service_manager": manager, "celery_common_config_dir": str(config)}))
        config_dirs[host] = config
    (root / "hosts.yml").write_text(yaml.safe_dump(inventory))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("supervisorctl", FAKE_SUPERVISORCTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)

    unit = "[Unit]\nDescription=Flower of an earlier inventory\n[Service]\nExecStart=/bin/true\n" \
           "[Install]\nWantedBy=multi-user.target\n"
    (root / UNIT).write_text(unit)
    command = (f"mount -t tmpfs celery-kit-flower {SYSTEMD_DIR}"
               f" && cp {root / UNIT} {SYSTEMD_DIR}/{UNIT} && mkdir {SYSTEMD_DIR}/multi-user.target.wants"
               f" && ln -s {SYSTEMD_DIR}/{UNIT} {SYSTEMD_DIR}/multi-user.target.wants/{UNIT}"
               f' && {{ "$0" "$@"; rc=$?; ls -A {SYSTEMD_DIR} > {root / "unit-dir-after"}; exit $rc; }}')
    exe = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0",
               PATH=f"{bin_dir}:{os.environ['PATH']}", KIT_FAKE_LOG=str(root / "fake"))
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command, str(exe),
                           "-i", str(root / "hosts.yml"), "site.yml", "--limit", ",".join(HOSTS),
                           "--tags", "flower", "--skip-tags", "common,supervisor", *args],
                          cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=240)
    return Run(root, done, config_dirs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Both runs at once: each spends most of its time starting Ansible."""
    modes = {"apply": (), "check": ("--check", "--diff")}
    with ThreadPoolExecutor(len(modes)) as pool:
        futures = {mode: pool.submit(_run, tmp_path_factory.mktemp(mode), *args) for mode, args in modes.items()}
        return {mode: future.result() for mode, future in futures.items()}


def _common_checks(run: Run) -> None:
    assert run.returncode == 0, run.output[-5000:]
    assert FLOWER_PASSWORD not in run.output, "flower.env's password printed"
    # Flower's own task and the service layer's (celery_common tasks/service.yml) that run it.
    for task in ("Write Flower's environment file", "Install the unit celery-flower.service",
                 "Write the supervisor programs"):
        assert task not in run.output, f"{task!r} ran on a host outside flower"
    stop = run.task("TASK [celery_kit.deploy.celery_common : Stop and disable celery-flower.service]")
    removal = run.task("TASK [celery_kit.deploy.celery_common : Remove the service's files from this host]")
    for host, config in run.config_dirs.items():
        assert f"changed: [{host}]" in stop, f"{host}: Flower is not stopped:\n{stop}"
        for path in (f"{config}/flower.env", f"{config}/supervisor/conf.d/celery-flower.conf"):
            assert f"changed: [{host}] => (item={path})" in removal, f"{host}: {path} is not removed:\n{removal}"
        assert f"[{host}] => (item={SYSTEMD_DIR}/{UNIT})" in removal, removal
    # The unit file is one for both hosts here: whichever comes first removes it.
    assert re.search(rf"changed: \[node\d\] => \(item={SYSTEMD_DIR}/{UNIT}\)", removal), removal


def test_a_host_outside_flower_stops_flower_and_removes_its_files(runs):
    run = runs["apply"]
    _common_checks(run)
    # Both hosts found the unit: each stopped and disabled it, then systemd forgot it.
    assert run.systemctl.count(f"stop {UNIT}") == len(HOSTS), run.systemctl
    assert run.systemctl.count(f"disable {UNIT}") == len(HOSTS), run.systemctl
    assert "daemon-reload" in run.systemctl
    assert UNIT not in run.unit_dir_after, run.unit_dir_after
    for config in run.config_dirs.values():
        assert not (config / "flower.env").exists() and not (config / "supervisor/conf.d/celery-flower.conf").exists()
    # Under supervisor the program's file is gone and `supervisorctl update` stops and drops it; a
    # systemd host has no supervisord to ask.
    node3_conf = run.config_dirs["node3"] / "supervisor" / "supervisord.conf"
    assert run.supervisorctl == [f"-c {node3_conf} update"], run.supervisorctl


def test_check_mode_reports_the_removal_and_changes_nothing(runs):
    run = runs["check"]
    _common_checks(run)
    assert not {c.split()[0] for c in run.systemctl if c.strip()} & {"stop", "disable", "daemon-reload"}, run.systemctl
    assert run.supervisorctl == []
    assert UNIT in run.unit_dir_after
    for config in run.config_dirs.values():
        assert (config / "flower.env").exists() and (config / "supervisor/conf.d/celery-flower.conf").exists()
