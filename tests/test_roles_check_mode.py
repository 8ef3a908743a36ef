"""`site.yml --check --diff` on a fresh host completes and prints no secret.

The target is this machine as a fresh host would look: ansible_connection=local, run in a
private mount namespace (unshare -m) with empty tmpfs over the systemd unit directories and
/etc/redis, so no unit the roles manage exists yet, exactly as before a first rollout. --check
changes nothing; the tmpfs mounts vanish with the namespace. Two Celery hosts cover both service
managers: node1 (systemd: workers, Flower), node2 (supervisor: workers, beat). The Redis host is
in the inventory (preflight compares the broker URL with its variables) but outside --limit:
the Redis role is not ready for this yet (see the xfail below).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from roles_support import ANSIBLE_DIR, ROLES_DIR, wheelhouse_tar

REDIS_PASSWORD = "Kit-Secret/redis#pw@1%?:x"
REDIS_ADMIN_PASSWORD = "Kit-Secret-redis-admin-pw-5"
FLOWER_PASSWORD = "Kit-Secret-flower-pw-42"
APP_SECRET = "Kit-Secret-app-api-key-7"
INDEX_TOKEN = "Kit-Secret-index-token-9"
SECRETS = [REDIS_PASSWORD, quote(REDIS_PASSWORD, safe=""), REDIS_ADMIN_PASSWORD, FLOWER_PASSWORD, APP_SECRET,
           INDEX_TOKEN]
FRESH = ["/etc/systemd/system", "/lib/systemd/system", "/etc/redis"]

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                reason="needs root and unshare(1) for a private mount namespace")


def _write_inventory(tmp_path: Path) -> tuple[Path, Path]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"vars": local, "children": {
        "redis": {"hosts": {"broker": {"lab_private_address": "10.99.0.10"}}},
        "celery_workers": {"hosts": {"node1": {}, "node2": {}}},
        "celery_beat": {"hosts": {"node2": {}}},
        "flower": {"hosts": {"node1": {}}},
    }}}
    wheelhouse = wheelhouse_tar(tmp_path / "wheelhouse.tar")
    quoted = quote(REDIS_PASSWORD, safe="")
    values = {
        "celery_common_wheelhouse_src": str(wheelhouse),
        "celery_redis_password": REDIS_PASSWORD,
        "celery_redis_admin_password": REDIS_ADMIN_PASSWORD,
        "celery_redis_bind_addresses": ["127.0.0.1", "10.99.0.10"],
        "celery_flower_basic_auth_password": FLOWER_PASSWORD,
        "celery_flower_address": "10.99.0.11",
        "celery_common_broker_url": f"redis://celery:{quoted}@10.99.0.10:6379/0",
        "celery_common_result_backend": f"redis://celery:{quoted}@10.99.0.10:6379/1",
        "celery_common_environment": {"APP_REDIS_URL": f"redis://celery:{quoted}@10.99.0.10:6379/2"},
        "celery_common_app_queues": ["default", "high", "low"],
        "celery_worker_instances": [
            {"name": "fast", "queues": ["high", "default"], "stop_timeout": 60,
             "environment": {"APP_API_KEY": APP_SECRET}},
            {"name": "bulk", "queues": ["low"], "autoscale": "3,1"},
        ],
    }
    host_vars = tmp_path / "host_vars"
    host_vars.mkdir()
    (host_vars / "node2.yml").write_text(yaml.safe_dump({
        "celery_common_service_manager": "supervisor", "celery_common_install_source": "index",
        "celery_common_pip_index_url": f"https://ci:{INDEX_TOKEN}@packages.invalid/simple"}))
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(values))
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path, wheelhouse


def _check_diff(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    inventory, _ = _write_inventory(tmp_path)
    mounts = " && ".join(f"mount -t tmpfs celery-kit-fresh {d}" for d in FRESH if Path(d).is_dir())
    exe = Path(sys.executable).parent / "ansible-playbook"
    command = f'{mounts} && exec "$0" "$@"'
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command, str(exe),
                           "-i", str(inventory), "site.yml", "--check", "--diff", *args],
                          cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=300)


def _leaks(output: str) -> list[str]:
    return [f"secret #{i}" for i, secret in enumerate(SECRETS) if secret in output]


def test_check_diff_on_fresh_celery_hosts_completes_without_printing_secrets(tmp_path):
    done = _check_diff(tmp_path, "--limit", "node1,node2")
    output = done.stdout + done.stderr
    assert not _leaks(output), f"{_leaks(output)} printed by --check --diff"
    assert done.returncode == 0, output[-5000:]
    assert "node1" in output and "node2" in output and "failed=0" in output
    # Diffs of files without secrets are still shown: the test would notice diff turned off wholesale.
    assert "+ExecStart=" in output and "[program:celery-worker-fast]" in output, output[-3000:]
    # The secret-bearing files are reported as changed, just without their content.
    for task in ("Write the shared environment file", "Write Flower's environment file",
                 "Write each instance's environment file"):
        assert task in output, task


def test_the_redis_role_hides_its_password_include_and_guards_its_service_in_check_mode():
    """Static, so it costs nothing: the Redis host is not part of the real run above."""
    tasks = ROLES_DIR / "celery_redis" / "tasks"
    configure = yaml.safe_load((tasks / "configure.yml").read_text())
    auth = [t for t in configure if "celery-auth.conf" in str(t.get("ansible.builtin.template", {}).get("src", ""))]
    assert auth and all(t.get("diff") is False for t in auth), "celery-auth.conf is rendered with its diff"
    service = yaml.safe_load((tasks / "service.yml").read_text())
    started = [t for t in service if "ansible.builtin.systemd_service" in t]
    assert started and all("ansible_check_mode" in str(t.get("when", "")) for t in started), \
        "Redis' service tasks fail in --check on a host without redis-server"
