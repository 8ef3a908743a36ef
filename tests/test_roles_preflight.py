"""Bad input stops site.yml in its preflight play, before any host is touched, naming the variable.

Runs the real site.yml with ansible-playbook against this machine (connection local) in
--check mode, restricted to the always-tagged preflight: a valid inventory must pass, and each
broken variable must fail with its name in the message and no later play started.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from roles_support import PREFLIGHT_VALID as VALID
from roles_support import ansible_playbook, wheelhouse_tar

# Built for Debian 13's Python; this machine's /usr/bin/python3 (Debian 12) is 3.11.
CP313_WHEELHOUSE = ("celery_kit_sample-1.0.0-py3-none-any.whl",
                    "pydantic_core-2.50.4-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")

# The module fixture below runs every case's ansible-playbook before the first test: its time
# counts against that test's timeout (pytest.ini: 300 s), too little for some 55 runs on a busy machine.
pytestmark = pytest.mark.timeout(1200)



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


def _run(tmp_path: Path, overrides: dict | None = None, drop: tuple[str, ...] = (), beat_hosts=("node1",),
         wheels: tuple[str, ...] | None = None):
    wheelhouse = wheelhouse_tar(tmp_path / "wheelhouse.tar", *([wheels] if wheels else []))
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


EXPORTER_PASSWORD = "preflight-test-metrics-password"
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
    "uv-missing": (dict(overrides={"celery_common_uv_src": "/nonexistent/uv"}),
                   "celery_common_uv_src: /nonexistent/uv is not a file on the controller"),
    "wheelhouse-for-another-python": (dict(wheels=CP313_WHEELHOUSE),
                                      "is built for cp313, but node1 runs Python 3.11"),
    "wheelhouse-per-python-not-built": (dict(overrides={
        "celery_common_wheelhouse_src": "/nonexistent/wheelhouse-{python_tag}.tar"}),
        "/nonexistent/wheelhouse-cp311.tar does not exist on the controller (node1 runs Python 3.11"),
    "eviction-policy": (dict(overrides={"celery_redis_maxmemory_policy": "evict-everything"}),
                        "celery_redis_maxmemory_policy"),
    "eviction-of-any-key": (dict(overrides={"celery_redis_maxmemory_policy": "allkeys-lru"}),
                            "celery_redis_maxmemory_policy: allkeys-lru lets Redis delete queued tasks"),
    "eviction-of-keys-with-a-ttl": (dict(overrides={"celery_redis_maxmemory_policy": "volatile-lru"}),
                                    "celery_redis_maxmemory_policy: volatile-lru lets Redis delete task results"),
    "redis-port-out-of-range": (dict(overrides={"celery_redis_port": 70000}),
                                "celery_redis_port: must be within 1-65535, got 70000"),
    "app-queue-with-a-space": (dict(overrides={"celery_common_app_queues": ["default", "high prio"]}),
                               "celery_common_app_queues: 'high prio'"),
    "instance-queue-with-a-comma": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high,default"]}]}),
                                    "celery_worker_instances[fast].queues: 'high,default'"),
    "instance-name-with-a-trailing-newline": (dict(overrides={"celery_worker_instances": [
        {"name": "fast\n", "queues": ["high"]}]}), "invalid: 'fast\\n'"),
    "user-with-a-trailing-space": (dict(overrides={"celery_common_user": "celery "}), "celery_common_user: 'celery '"),
    "environment-key-with-a-newline": (dict(overrides={"celery_common_environment": {"CELERY_X\n": "1"}}),
                                       "keys must be shell variable names, got 'CELERY_X\\n'"),
    "timezone-typo": (dict(overrides={"celery_common_environment": {"CELERY_TIMEZONE": "Europe/Berln"}}),
                      "CELERY_TIMEZONE: 'Europe/Berln' is no IANA time zone"),
    "broker-scheme-redis-cannot-serve": (dict(overrides={
        "celery_common_broker_url": "amqp://guest:preflight-test-redis-password@10.99.0.10:5672//"}),
        "celery_common_broker_url: scheme amqp://"),
    "broker-host-redis-does-not-bind": (dict(overrides={
        "celery_common_broker_url": "redis://celery:preflight-test-redis-password@10.9.9.9:6379/0"}),
        "celery_common_broker_url: host 10.9.9.9"),
    "broker-port-is-not-the-redis-port": (dict(overrides={
        "celery_common_broker_url": "redis://celery:preflight-test-redis-password@10.99.0.10:6380/0"}),
        "celery_common_broker_url: port 6380 in redis://********@10.99.0.10:6380/0 is not celery_redis_port (6379)"),
    "broker-password-is-not-the-redis-password": (dict(overrides={
        "celery_common_broker_url": "redis://celery:preflight-test-other-password@10.99.0.10:6379/0"}),
        "is not celery_redis_password"),
    "redis-admin-password-missing": (dict(drop=("celery_redis_admin_password",)), "celery_redis_admin_password"),
    "redis-password-empty": (dict(overrides={"celery_redis_password": ""}),
                             "celery_redis_password: required, a non-empty string"),
    "redis-admin-password-short": (dict(overrides={"celery_redis_admin_password": "short-admin-pw"}),
                                   "celery_redis_admin_password: at least 16 characters (value not shown)"),
    "redis-previous-password-is-the-new-one": (dict(overrides={
        "celery_redis_previous_password": "preflight-test-redis-password"}),
        "celery_redis_previous_password: equals celery_redis_password"),
    "redis-admin-previous-password-is-the-new-one": (dict(overrides={
        "celery_redis_admin_previous_password": "preflight-test-redis-admin-password"}),
        "celery_redis_admin_previous_password: equals celery_redis_admin_password"),
    "redis-admin-password-is-the-celery-password": (dict(overrides={
        "celery_redis_admin_password": "preflight-test-redis-password"}),
        "celery_redis_admin_password: must differ from celery_redis_password"),
    "redis-user-with-a-space": (dict(overrides={"celery_redis_user": "cel ery"}),
                                'celery_redis_user: "cel ery" must be'),
    "redis-user-with-a-trailing-newline": (dict(overrides={"celery_redis_user": "celery\n"}),
                                           'celery_redis_user: "celery\\n" must be'),
    "redis-user-is-the-admin": (dict(overrides={"celery_redis_user": "admin"}),
                                "celery_redis_user: admin is a user the role defines itself"),
    "broker-url-without-a-user": (dict(overrides={
        "celery_common_broker_url": "redis://:preflight-test-redis-password@10.99.0.10:6379/0"}),
        "celery_common_broker_url: redis://********@10.99.0.10:6379/0 names no user"),
    "broker-url-with-another-user": (dict(overrides={
        "celery_common_broker_url": "redis://admin:preflight-test-redis-password@10.99.0.10:6379/0"}),
        "celery_common_broker_url: user 'admin' in redis://********@10.99.0.10:6379/0 is not celery_redis_user"),
    "broker-url-with-the-previous-password": (dict(overrides={
        "celery_redis_previous_password": "preflight-test-old-redis-password",
        "celery_common_broker_url": "redis://celery:preflight-test-old-redis-password@10.99.0.10:6379/0"}),
        "is not celery_redis_password"),
    "backend-password-not-encoded": (dict(overrides={
        "celery_redis_password": "preflight/test#redis@password",
        "celery_common_broker_url": "redis://celery:preflight%2Ftest%23redis%40password@10.99.0.10:6379/0",
        "celery_common_result_backend": "redis://:preflight/test#redis@password@10.99.0.10:6379/1"}),
        "celery_common_result_backend: redis://******** does not parse"),
    "worker-arg-with-the-redis-password": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high"],
         "extra_args": ["--without-gossip", "--x=preflight-test-redis-password"]}]}),
        "celery_worker_instances[fast].extra_args[1]: the argument contains a password"),
    "worker-broker-flag": (dict(overrides={"celery_worker_extra_args": ["--broker=redis://127.0.0.1:6379/0"]}),
                           "celery_worker_extra_args[0]: --broker puts a credential"),
    "beat-basic-auth-flag": (dict(overrides={"celery_beat_extra_args": ["--basic-auth=admin:pw"]}),
                             "celery_beat_extra_args[0]: --basic-auth"),
    "flower-on-every-ipv4-address": (dict(overrides={"celery_flower_address": "0.0.0.0"}),
                                     'celery_flower_address: "0.0.0.0" would expose'),
    "flower-on-every-ipv6-address": (dict(overrides={"celery_flower_address": "::"}),
                                     'celery_flower_address: "::" would expose'),
    "flower-allow-list-under-supervisor": (dict(overrides={"celery_common_service_manager": "supervisor",
                                                           "celery_flower_ip_address_allow": ["10.0.0.0/24"]}),
                                           "celery_flower_ip_address_allow: ['10.0.0.0/24'] cannot be applied"),
    "flower-user-with-a-tab": (dict(overrides={"celery_flower_basic_auth_user": "ad\tmin"}),
                               "celery_flower_basic_auth_user: 'ad\\tmin'"),
    "beat-state-dir-with-a-newline": (dict(overrides={"celery_beat_state_dir_name": "celery-beat\n"}),
                                      "celery_beat_state_dir_name: 'celery-beat\\n'"),
    "cold-shutdown-zero": (dict(overrides={"celery_worker_cold_shutdown_timeout": 0}),
                           "celery_worker_cold_shutdown_timeout: must be 1-600 seconds"),
    "cold-shutdown-a-day": (dict(overrides={"celery_worker_cold_shutdown_timeout": 86400}),
                            "celery_worker_cold_shutdown_timeout: must be 1-600 seconds"),
    "memory-max-not-a-size": (dict(overrides={"celery_worker_instances": [
        {"name": "fast", "queues": ["high"], "memory_max": "2 GB"}]}),
        'celery_worker_instances[fast].memory_max (or celery_worker_memory_max): "2 GB" is not a systemd size'),
    "open-files-limit-too-low": (dict(overrides={"celery_worker_limit_nofile": 64}),
                                 "celery_worker_limit_nofile: must be a whole number of at least 1024"),
    "log-rate-interval-not-a-time-span": (dict(overrides={"celery_worker_log_rate_limit_interval": "30 seconds"}),
                                          'celery_worker_log_rate_limit_interval: "30 seconds" is not a time span'),
    "ready-timeout-too-short": (dict(overrides={"celery_worker_ready_timeout": 2}),
                                "celery_worker_ready_timeout: must be whole seconds, at least 10"),
    "rollout-batch-zero": (dict(overrides={"celery_rollout_batch": 0}),
                           "celery_rollout_batch: must be a number of hosts (at least 1) or a percentage"),
    "releases-keep-one": (dict(overrides={"celery_common_releases_keep": 1}),
                          "celery_common_releases_keep: must be a whole number of at least 2"),
    "exporter-password-missing": (dict(overrides={"celery_redis_exporter": True}),
                                  "celery_redis_exporter_password: required with celery_redis_exporter: true"),
    "exporter-password-is-the-celery-password": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": "preflight-test-redis-password"}),
        "celery_redis_exporter_password: must differ from the celery and admin passwords"),
    "exporter-on-every-address": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": EXPORTER_PASSWORD,
        "celery_redis_exporter_listen_address": "0.0.0.0:9121"}),
        'celery_redis_exporter_listen_address: "0.0.0.0:9121" must be HOST:PORT with one address'),
    "exporter-address-without-a-port": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": EXPORTER_PASSWORD,
        "celery_redis_exporter_listen_address": "10.0.0.5"}),
        'celery_redis_exporter_listen_address: "10.0.0.5" must be HOST:PORT'),
    "exporter-queue-with-a-comma": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": EXPORTER_PASSWORD,
        "celery_redis_exporter_queues": ["default", "a,b"]}),
        "celery_redis_exporter_queues: 'a,b'"),
    "exporter-key-without-a-db": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": EXPORTER_PASSWORD,
        "celery_redis_exporter_keys": ["celery-kit:dead-letter"]}),
        'celery_redis_exporter_keys: ["celery-kit:dead-letter"] must each be dbN=KEY'),
    "exporter-user-is-the-celery-user": (dict(overrides={
        "celery_redis_exporter": True, "celery_redis_exporter_password": EXPORTER_PASSWORD,
        "celery_redis_exporter_user": "celery"}),
        "celery_redis_exporter_user: celery is already a user of this Redis"),
}

# One option per role that only its argument spec checks (tasks/preflight.yml has no check of its own
# for it): site.yml's preflight play reaches each role by `tasks_from: preflight`, and Ansible validates
# the role's `preflight` entry point first.
SPEC_CASES = {
    "celery_redis": "celery_redis_loglevel",
    "celery_common": "celery_common_install_source",
    "celery_supervisor": "celery_supervisor_loglevel",
    "celery_worker": "celery_worker_loglevel",
    "celery_beat": "celery_beat_loglevel",
    "celery_flower": "celery_flower_loglevel",
}
CASES.update({f"spec-{role}": (dict(overrides={variable: "loud"}), f"value of {variable} must be one of")
              for role, variable in SPEC_CASES.items()})


@pytest.fixture(scope="module")
def bad_input_runs(request, tmp_path_factory):
    """Every selected case's ansible-playbook run, three at a time (each is a separate process
    spending most of its time starting Ansible; one after the other they took three minutes)."""
    selected = sorted({item.callspec.params["case"] for item in request.session.items
                       if item.originalname == "test_bad_input_fails_in_preflight_naming_the_variable"}
                      | {f"spec-{item.callspec.params['role']}" for item in request.session.items
                         if item.originalname == "test_preflight_validates_each_role_by_its_entry_point"})

    def run(case):
        kwargs, _ = CASES[case]
        return case, _run(tmp_path_factory.mktemp(case), **kwargs)

    tmp_path_factory.getbasetemp()  # made here: three threads making it at once collide
    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(run, selected))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_preflight_naming_the_variable(bad_input_runs, case):
    kwargs, expected = CASES[case]
    result = bad_input_runs[case]
    output = result.stdout + result.stderr
    assert result.returncode != 0, textwrap.shorten(output, 3000)
    assert expected in output, output[-4000:]
    assert not _started_a_change_play(output), "a play that changes hosts started despite bad input"
    values = {**VALID, **kwargs.get("overrides", {})}
    for name in ("celery_redis_password", "celery_redis_admin_password", "celery_redis_previous_password",
                 "celery_redis_admin_previous_password", "celery_flower_basic_auth_password"):
        if name in values:
            if values[name]:
                assert values[name] not in output, f"{name} printed"


@pytest.mark.parametrize("role", sorted(SPEC_CASES))
def test_preflight_validates_each_role_by_its_entry_point(bad_input_runs, role):
    """A value outside the spec's choices fails the role's `preflight` entry point validation."""
    output = bad_input_runs[f"spec-{role}"].stdout
    failed_task = output.split("fatal: ")[0].rsplit("TASK [", 1)[-1]
    assert failed_task.startswith(f"celery_kit.deploy.{role} : Validating arguments against arg spec 'preflight'"), (
        failed_task[:300], output[-3000:])
    assert f"value of {SPEC_CASES[role]} must be one of" in output


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_the_lab_inventory_passes_preflight(tmp_path, tls):
    """The shipped lab layout (ansible/inventories/lab) is valid input, checked here without VMs;
    also with Redis over TLS (`-e celery_redis_tls=true`), its certificates made by
    lab/redis-tls-certs.sh."""
    wheelhouse = wheelhouse_tar(tmp_path / "wheelhouse.tar")
    extra = ["-e", "celery_redis_tls=false"]   # whatever LAB_REDIS_TLS says in this environment
    if tls:
        repo = Path(__file__).resolve().parents[1]
        certs = tmp_path / "redis-tls"
        subprocess.run([str(repo / "lab" / "redis-tls-certs.sh"), str(certs)], check=True, capture_output=True)
        extra = ["-e", "celery_redis_tls=true", "-e", f"celery_redis_tls_cert_src={certs}/redis.crt",
                 "-e", f"celery_redis_tls_key_src={certs}/redis.key", "-e", f"celery_redis_tls_ca_src={certs}/ca.crt"]
    result = ansible_playbook("-i", "inventories/lab", "site.yml", "--check", "--tags", "always",
                              "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
                              "-e", f"celery_common_wheelhouse_src={wheelhouse}",
                              "-e", f"celery_common_uv_src={Path(sys.executable).with_name('uv')}",
                              *extra, "--limit", "broker,worker1,worker2,control",
                              timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "PLAY [Preflight" in result.stdout


def test_the_lab_inventory_has_the_topology_the_lab_boots():
    """ansible/inventories/lab/hosts.yml names the groups the lab boots (the default scenario's platforms,
    from .config/molecule/config.yml; make lab combines both): a host moved in one and not the other
    would converge a different fleet."""
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "lab"))
    try:
        from labvm import topology
    finally:
        sys.path.pop(0)
    booted = {(g, m.name) for m in topology.load(repo / "molecule/default/molecule.yml").machines for g in m.groups}
    inventory = yaml.safe_load((repo / "ansible/inventories/lab/hosts.yml").read_text())["all"]["children"]
    declared = {(g, h) for g, body in inventory.items() for h in (body.get("hosts") or {})}
    assert declared == booted


@pytest.mark.parametrize("value", ["tru", "on", "TLS"])
def test_a_mistyped_lab_redis_tls_stops_the_lab_rather_than_leaving_tls_off(tmp_path, monkeypatch, value):
    """LAB_REDIS_TLS takes 1/true/yes or 0/false/no/empty: anything else stops both the lab's playbooks
    and its tests, naming the value (a typo would otherwise converge and verify a plaintext lab)."""
    monkeypatch.setenv("LAB_REDIS_TLS", value)
    result = ansible_playbook("-i", "inventories/lab", "site.yml", "--check", "--tags", "always",
                              "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
                              "--limit", "broker", timeout=240)
    assert result.returncode != 0
    assert f"LAB_REDIS_TLS={value} is not one of" in result.stdout + result.stderr
    repo = Path(__file__).resolve().parents[1]
    tests = subprocess.run([sys.executable, "-c", "import labtest"], cwd=repo / "molecule" / "shared",
                           capture_output=True, text=True)
    assert tests.returncode != 0 and f"LAB_REDIS_TLS={value!r} is not one of" in tests.stderr
