"""Bad input stops site.yml in its preflight play, before any host is touched, naming the variable.

Runs the real site.yml with ansible-playbook against this machine (connection local) in
--check mode, restricted to the always-tagged preflight: a valid inventory must pass, and each
broken variable must fail with its name in the message and no later play started.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from roles_support import ansible_playbook

VALID = {
    "celery_redis_password": "preflight-test-redis-password",
    "celery_flower_basic_auth_password": "preflight-test-flower-password",
    "celery_common_broker_url": "redis://:preflight-test-redis-password@127.0.0.1:6379/0",
    "celery_common_app_queues": ["default", "high", "long", "low"],
    "celery_worker_instances": [
        {"name": "fast", "queues": ["high", "default"], "stop_timeout": 60},
        {"name": "bulk", "queues": ["low"], "autoscale": "4,1"},
    ],
}


def _inventory(tmp_path: Path, beat_hosts: list[str]) -> Path:
    hosts = {"node1": {"ansible_connection": "local"}, "node2": {"ansible_connection": "local"}}
    inv = {"all": {"vars": {"ansible_python_interpreter": sys.executable}, "children": {
        "redis": {"hosts": {"node1": hosts["node1"]}},
        "celery_workers": {"hosts": {"node1": hosts["node1"]}},
        "celery_beat": {"hosts": {h: hosts[h] for h in beat_hosts}},
        "flower": {"hosts": {"node1": hosts["node1"]}},
    }}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


def _run(tmp_path: Path, overrides: dict | None = None, drop: tuple[str, ...] = (), beat_hosts=("node1",)):
    wheelhouse = tmp_path / "wheelhouse.tar"
    wheelhouse.write_bytes(b"")
    values = {"celery_common_wheelhouse_src": str(wheelhouse), **VALID, **(overrides or {})}
    values = {k: v for k, v in values.items() if k not in drop}
    extra = tmp_path / "vars.yml"
    extra.write_text(yaml.safe_dump(values))
    inventory = _inventory(tmp_path, list(beat_hosts))
    return ansible_playbook("-i", str(inventory), "site.yml", "--check", "--tags", "always",
                            "-e", f"@{extra}", timeout=240)


def _started_a_change_play(output: str) -> bool:
    return "PLAY [Redis broker" in output or "PLAY [Celery base" in output


def test_valid_inventory_passes_preflight(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "PLAY [Preflight" in result.stdout


CASES = {
    "flower-password-missing": (dict(drop=("celery_flower_basic_auth_password",)),
                                "celery_flower_basic_auth_password"),
    "redis-password-missing": (dict(drop=("celery_redis_password",)), "celery_redis_password"),
    "broker-url-missing": (dict(drop=("celery_common_broker_url",)), "celery_common_broker_url"),
    "beat-on-no-host": (dict(beat_hosts=()), "celery_beat_group"),
    "beat-on-two-hosts": (dict(beat_hosts=("node1", "node2")), "celery_beat_group"),
    "queue-not-declared": (dict(overrides={"celery_worker_instances": [{"name": "fast", "queues": ["hgih"]}]}),
                           "celery_worker_instances[fast]"),
    "duplicate-instance-names": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high"]}, {"name": "fast", "queues": ["low"]}]}), "(duplicates: ['fast'])"),
    "concurrency-zero": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high"], "concurrency": 0}]}), "concurrency must be >= 1"),
    "default-concurrency-zero": (dict(overrides={"celery_worker_concurrency": 0}), "concurrency must be >= 1"),
    "wrong-type": (dict(overrides={"celery_worker_concurrency": "many"}), "celery_worker_concurrency"),
    "unknown-choice": (dict(overrides={"celery_common_service_manager": "docker"}), "celery_common_service_manager"),
    "unknown-pool": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high"], "pool": "gevnet"}]}), "pool"),
    "redis-on-every-address": (dict(overrides={"celery_redis_bind_addresses": ["0.0.0.0"]}),
                               "celery_redis_bind_addresses"),
    "stop-timeout-beyond-visibility": (dict(overrides={"celery_worker_instances": [
        {"name": "long", "queues": ["long"], "stop_timeout": 20000}]}), "celery_common_visibility_timeout"),
    "wheelhouse-missing": (dict(overrides={"celery_common_wheelhouse_src": "/nonexistent/wheelhouse.tar"}),
                           "celery_common_wheelhouse_src"),
    "eviction-policy": (dict(overrides={"celery_redis_maxmemory_policy": "evict-everything"}),
                        "celery_redis_maxmemory_policy"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_preflight_naming_the_variable(tmp_path, case):
    kwargs, expected = CASES[case]
    result = _run(tmp_path, **kwargs)
    output = result.stdout + result.stderr
    assert result.returncode != 0, textwrap.shorten(output, 3000)
    assert expected in output, output[-4000:]
    assert not _started_a_change_play(output), "a play that changes hosts started despite bad input"


def test_the_lab_inventory_passes_preflight(tmp_path):
    """The shipped lab layout (ansible/inventories/lab) is valid input, checked here without VMs."""
    wheelhouse = tmp_path / "wheelhouse.tar"
    wheelhouse.write_bytes(b"")
    result = ansible_playbook("-i", "inventories/lab", "site.yml", "--check", "--tags", "always",
                              "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
                              "-e", f"celery_common_wheelhouse_src={wheelhouse}", "--limit", "broker,worker1,worker2,control",
                              timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "PLAY [Preflight" in result.stdout
