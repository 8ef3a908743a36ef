"""Helpers for the role tests: where things are, and how to run Ansible from the repo venv."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_DIR = REPO / "ansible"
ROLES_DIR = ANSIBLE_DIR / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").exists())


# A valid input for the roles' preflight: node1 runs Redis, workers, beat and Flower (the role tests'
# inventories); tests override or drop single values to check each refusal.
PREFLIGHT_VALID = {
    "celery_redis_password": "preflight-test-redis-password",
    "celery_redis_admin_password": "preflight-test-redis-admin-password",
    "celery_flower_basic_auth_password": "preflight-test-flower-password",
    # Redis on node1, reached by every Celery host on its private address.
    "celery_redis_bind_addresses": ["127.0.0.1", "10.99.0.10"],
    "celery_common_broker_url": "redis://celery:preflight-test-redis-password@10.99.0.10:6379/0",
    "celery_common_app_queues": ["default", "high", "long", "low"],
    "celery_worker_instances": [
        {"name": "fast", "queues": ["high", "default"], "stop_timeout": 60},
        {"name": "bulk", "queues": ["low"], "autoscale": "4,1"},
    ],
}


def ansible_playbook(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ansible-playbook from this interpreter's venv, with the kit's ansible.cfg."""
    exe = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return subprocess.run([str(exe), *args], cwd=ANSIBLE_DIR, env=env, capture_output=True,
                          text=True, timeout=timeout)


def wheelhouse_tar(path: Path, names: tuple[str, ...] = ("celery_kit_sample-1.0.0-py3-none-any.whl",)) -> Path:
    """A wheelhouse archive as lab/build-wheelhouse.sh lays it out (one top-level `wheelhouse/`),
    holding empty files under the given wheel names: enough for every preflight check, which reads
    names and tags only."""
    with tarfile.open(path, "w") as tar:
        for name in names:
            info = tarfile.TarInfo(f"wheelhouse/{name}")
            tar.addfile(info, io.BytesIO(b""))
    return path
