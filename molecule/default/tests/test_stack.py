"""The deployed Celery stack, as a user sees it: services up, reachable only where intended,
secrets kept out of argv, tasks round-tripping, beat once per interval, Flower behind a
password. A worker restart with a long task running and a worker VM's reboot are faults of the
scenario's side effect (molecule/shared/faults.py: workers_restart, worker_reboot), counted by its
ledger; the verify after it checks the fleet is whole again.

Runs against the Molecule inventory of the default scenario, whose fleet mixes both service
managers (systemd units on worker1 and worker2, supervisor programs on control): each check asks
the host which one it uses. The bare scenario imports the same checks.
"""

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import labtest
import pytest

APP_ENV = "/etc/celery/common.env"

# These checks describe the deployed stack. While a scenario still converges only the lab's
# plumbing smoke playbook (the lab is being built), they do not apply to it.
_SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
if "ansible/site.yml" not in (_SCENARIO / "converge.yml").read_text():
    pytest.skip(f"{_SCENARIO.name} does not converge ansible/site.yml", allow_module_level=True)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def hv(host) -> dict:
    return labtest.hostvars(host)


def groups(host) -> list:
    return hv(host).get("group_names", [])


def manager(host) -> str:
    return hv(host).get("celery_common_service_manager", "systemd")


def only(host, group):
    if group not in groups(host):
        pytest.skip(f"{host.backend.hostname} is not in {group}")


def celery_python(host, code: str, timeout: int = 120) -> str:
    """Run Python with the deployed app and the host's Celery environment, as the service user."""
    inner = f"set -a; . {APP_ENV}; set +a; cd /opt/celery/current && exec venv/bin/python -c {shlex.quote(code)}"
    cmd = host.run(f"sudo -u celery timeout {timeout} sh -c {shlex.quote(inner)}")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    return cmd.stdout.strip()


def redis_cli(host, *args: str, user: str = "admin") -> str:
    password = hv(host)["celery_redis_admin_password" if user == "admin" else "celery_redis_password"]
    cmd = host.run(f"REDISCLI_AUTH=%s sudo --preserve-env=REDISCLI_AUTH {labtest.REDIS_CLI} --no-auth-warning"
                   " --user %s -n 2 " + " ".join(["%s"] * len(args)), password, user, *args)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def worker_nodes(host) -> set:
    """Node names every worker host of the inventory declares (name@hostname)."""
    nodes = set()
    runner = host.backend.ansible_runner
    for name in runner.get_hosts("celery_workers"):
        for inst in runner.get_variables(name).get("celery_worker_instances", []):
            nodes.add(f"{inst['name']}@{name}")
    return nodes


def service_active(host, name: str) -> bool:
    if manager(host) == "supervisor":
        prog = name.replace(".service", "").replace("@", "-")
        out = host.run("sudo supervisorctl -c /etc/celery/supervisor/supervisord.conf status %s", prog).stdout
        return " RUNNING " in out
    return host.service(name).is_running and host.service(name).is_enabled


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------
@labtest.unit("redis-server")
def test_redis_enabled_running_and_listening_only_on_loopback_and_private(host):
    only(host, "redis")
    assert host.service("redis-server").is_enabled and host.service("redis-server").is_running
    listening = {str(s) for s in host.socket.get_listening_sockets() if s.endswith(":6379")}
    assert listening == {"tcp://127.0.0.1:6379", f"tcp://{labtest.private_address(host)}:6379"}


def test_redis_demands_the_password_and_keeps_queues_safe(host):
    only(host, "redis")
    unauthenticated = host.run(f"sudo {labtest.REDIS_CLI} -h 127.0.0.1 ping")
    assert "NOAUTH" in unauthenticated.stdout + unauthenticated.stderr
    # The celery user runs Celery's commands only; the default user is disabled.
    assert redis_cli(host, "ping", user="celery") == "PONG"
    # (Commands that would do no harm if they did run.)
    for command in (["config", "get", "appendonly"], ["replicaof", "no", "one"], ["acl", "list"], ["keys", "*"]):
        assert "NOPERM" in redis_cli(host, *command, user="celery"), command
    bare = host.run(f"REDISCLI_AUTH=%s sudo --preserve-env=REDISCLI_AUTH {labtest.REDIS_CLI} --no-auth-warning ping",
                    hv(host)["celery_redis_password"])
    assert "WRONGPASS" in bare.stdout + bare.stderr
    assert redis_cli(host, "config", "get", "appendonly").split() == ["appendonly", "yes"]
    assert redis_cli(host, "config", "get", "maxmemory-policy").split() == ["maxmemory-policy", "noeviction"]
    assert redis_cli(host, "config", "get", "protected-mode").split() == ["protected-mode", "yes"]
    with host.sudo():
        auth = host.file("/etc/redis/celery-auth.conf")
        assert (auth.user, auth.group, auth.mode) == ("root", "redis", 0o640)
        # Every restart replayed the whole append-only file: no transaction in it was refused.
        refused = host.run("journalctl -u redis-server --no-pager -o cat | grep -c 'AOF-loading-client' || true")
        assert refused.stdout.strip() == "0", "Redis dropped transactions from its AOF at a restart"


def test_redis_speaks_tls_only_when_the_lab_turns_it_on(host):
    """LAB_REDIS_TLS=1: Redis listens with TLS only (a plaintext client gets no reply) and every
    Celery URL is rediss:// verified against the CA; otherwise plaintext, and no TLS anywhere."""
    only(host, "redis")
    with host.sudo():
        conf = host.file("/etc/redis/redis.conf").content_string
    plaintext = host.run("timeout 10 redis-cli -h 127.0.0.1 ping")
    if labtest.REDIS_TLS:
        assert "\nport 0\n" in conf and "\ntls-port 6379\n" in conf
        assert "NOAUTH" not in plaintext.stdout and "PONG" not in plaintext.stdout, plaintext.stdout
        assert redis_cli(host, "ping", user="celery") == "PONG"
        wrong_ca = host.run("REDISCLI_AUTH=x timeout 10 redis-cli --tls --cacert /etc/ssl/certs/ca-certificates.crt"
                            " --no-auth-warning -h 127.0.0.1 ping")
        assert "PONG" not in wrong_ca.stdout and "WRONGPASS" not in wrong_ca.stdout, wrong_ca.stdout
    else:
        assert "tls-port" not in conf
        assert "NOAUTH" in plaintext.stdout + plaintext.stderr


def test_celery_urls_use_the_transport_redis_speaks(host):
    if not {"celery_workers", "celery_beat", "flower"} & set(groups(host)):
        pytest.skip("not a Celery host")
    with host.sudo():
        env = host.file("/etc/celery/common.env").content_string
    urls = [line.split("=", 1)[1].strip("'\"") for line in env.splitlines()
            if line.split("=", 1)[0] in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "APP_REDIS_URL")]
    assert len(urls) == 3, f"{len(urls)} Redis URLs in common.env"
    for url in urls:
        if labtest.REDIS_TLS:
            assert url.startswith("rediss://") and "ssl_cert_reqs=required" in url
            assert "ssl_ca_certs=/etc/celery/redis-ca.crt" in url
        else:
            assert url.startswith("redis://")
    with host.sudo():
        assert host.file("/etc/celery/redis-ca.crt").exists == labtest.REDIS_TLS


# --------------------------------------------------------------------------------------------
# Celery hosts: files, services
# --------------------------------------------------------------------------------------------
def _celery_host(host):
    if not {"celery_workers", "celery_beat", "flower"} & set(groups(host)):
        pytest.skip("not a Celery host")


def test_secret_files_are_root_owned_and_group_readable_only(host):
    _celery_host(host)
    with host.sudo():
        conf = host.file("/etc/celery")
        assert (conf.user, conf.group, conf.mode) == ("root", "celery", 0o750)
        names = host.run("find /etc/celery -maxdepth 1 -name '*.env' -printf '%f\\n'").stdout.split()
        assert "common.env" in names
        for name in names:
            f = host.file(f"/etc/celery/{name}")
            assert (f.user, f.group, f.mode) == ("root", "celery", 0o640), name


def test_service_user_cannot_log_in_and_code_is_read_only_for_it(host):
    _celery_host(host)
    user = host.user("celery")
    assert user.shell == "/usr/sbin/nologin"
    current = host.file("/opt/celery/current")
    assert current.is_symlink and current.linked_to.startswith("/opt/celery/releases/")
    assert host.run("sudo -u celery test -w /opt/celery/current/venv/bin").rc != 0


def test_workers_running_as_declared(host):
    only(host, "celery_workers")
    instances = hv(host)["celery_worker_instances"]
    assert instances
    for inst in instances:
        assert service_active(host, f"celery-worker@{inst['name']}.service"), inst["name"]
    if manager(host) == "systemd":
        assert host.service("celery-workers.target").is_enabled


def test_each_worker_can_write_its_own_state_directory(host):
    """Where the worker runs (its unit's mount namespace, or supervisord's), its state directory is
    writable: tasks keep files there (the delivery ledger of app.tasks.probe). ProtectSystem=strict
    leaves every path read-only that the unit does not list."""
    only(host, "celery_workers")
    for inst in hv(host)["celery_worker_instances"]:
        if manager(host) == "supervisor":
            pid = host.check_output("systemctl show -p MainPID --value celery-supervisor.service")
        else:
            pid = host.check_output("systemctl show -p MainPID --value celery-worker@%s.service", inst["name"])
        assert pid not in ("", "0"), inst["name"]
        directory = f"/var/lib/celery/worker-{inst['name']}"
        probe = host.run("sudo nsenter -t %s -m -- sh -c %s", pid,
                         f"f={directory}/.write-check && : > $f && rm $f")
        assert probe.rc == 0, f"{inst['name']}: {directory} is not writable where it runs: {probe.stderr}"


def test_the_fleet_runs_both_service_managers(host):
    """One converge proves the units and the supervisor programs: neither may drop out of the lab."""
    only(host, "celery_beat")
    if _SCENARIO.name != "default":
        pytest.skip(f"{_SCENARIO.name} is not the mixed fleet")
    runner = host.backend.ansible_runner
    celery_hosts = {n for g in ("celery_workers", "celery_beat", "flower") for n in runner.get_hosts(g)}
    managers = {runner.get_variables(n).get("celery_common_service_manager", "systemd") for n in celery_hosts}
    assert managers == {"systemd", "supervisor"}


def _supervisor_host(host):
    _celery_host(host)
    if manager(host) != "supervisor":
        pytest.skip(f"{host.backend.hostname} runs its Celery services under systemd")


def test_supervisord_runs_as_the_service_user_under_systemd(host):
    _supervisor_host(host)
    unit = host.service("celery-supervisor")
    assert unit.is_enabled and unit.is_running
    assert host.process.get(comm="supervisord").user == "celery"
    assert not host.service("supervisor").is_running  # Debian's root supervisord stays off


def test_no_systemd_celery_units_run_next_to_supervisor(host):
    _supervisor_host(host)
    units = host.run("systemctl list-units 'celery-worker@*' 'celery-worker-surge@*' 'celery-beat*' "
                     "'celery-flower*' --no-legend --plain").stdout
    assert units.strip() == ""


def runs_only_in_its_group(host, group: str, service: str) -> bool:
    """Asserts ``service`` runs on ``host`` exactly when the host is in ``group`` (under systemd its
    unit file exists only there); returns whether it is."""
    here = group in groups(host)
    if manager(host) == "systemd":
        assert host.file(f"/etc/systemd/system/{service}").exists == here
    if here:
        assert service_active(host, service)
    return here


def test_beat_runs_exactly_on_the_beat_host(host):
    runs_only_in_its_group(host, "celery_beat", "celery-beat.service")


def test_flower_runs_only_on_the_flower_hosts(host):
    if not runs_only_in_its_group(host, "flower", "celery-flower.service"):
        with host.sudo():
            assert not host.file("/etc/celery/flower.env").exists  # its password leaves with Flower


def test_no_secret_in_any_process_argv(host):
    secrets = [hv(host)["celery_redis_password"], hv(host)["celery_flower_basic_auth_password"]]
    argv = host.run("sudo sh -c 'for f in /proc/[0-9]*/cmdline; do tr \"\\0\" \" \" < $f; echo; done'").stdout
    assert "celery" in argv or "redis" in argv  # the scan sees the services at all
    for secret in secrets:
        assert secret not in argv


# --------------------------------------------------------------------------------------------
# Flower
# --------------------------------------------------------------------------------------------
HTTP_GET = """
import base64, sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        code, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    code, body = e.code, ""
print(code)
print(body)
"""


def _flower(host, path: str, auth: bool) -> tuple[int, str]:
    """GET from Flower on its private address, from the Flower host itself (python3, no curl)."""
    url = f"http://{labtest.private_address(host)}:5555{path}"
    creds = f"admin:{hv(host)['celery_flower_basic_auth_password']}" if auth else ""
    out = host.check_output("python3 -c %s %s %s", HTTP_GET, url, creds)
    code, _, body = out.partition("\n")
    return int(code), body


@labtest.unit("celery-flower")
def test_flower_listens_on_the_private_address_only(host):
    only(host, "flower")
    listening = {str(s) for s in host.socket.get_listening_sockets() if s.endswith(":5555")}
    assert listening == {f"tcp://{labtest.private_address(host)}:5555"}


@labtest.unit("celery-flower")
def test_flower_requires_the_password(host):
    only(host, "flower")
    assert _flower(host, "/", auth=False)[0] == 401
    assert _flower(host, "/api/workers", auth=False)[0] == 401
    assert _flower(host, "/", auth=True)[0] == 200


CONNECT_FROM = """
import socket, sys
s = socket.socket()
s.settimeout(5)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    print(s.recv(12).decode() or "closed")
except OSError as e:
    print(type(e).__name__)
"""


@labtest.unit("celery-flower")
def test_flower_drops_clients_outside_its_allow_list(host):
    """systemd's IPAddressAllow admits the private segment only: a connection from the same VM's
    NAT address (outside the allow-list) never gets an answer, one from the private address does."""
    only(host, "flower")
    if manager(host) != "systemd":
        pytest.skip("the IP allow-list is a systemd unit setting")
    private = labtest.private_address(host)
    addresses = host.check_output("ip -4 -o addr show scope global | awk '{print $4}'").split()
    outside = [a.split("/")[0] for a in addresses if a.split("/")[0] != private]
    assert outside, addresses
    assert host.check_output("python3 -c %s %s %s 5555", CONNECT_FROM, private, private).startswith("HTTP/1.1 401")
    assert host.check_output("python3 -c %s %s %s 5555", CONNECT_FROM, outside[0], private) == "TimeoutError"

@labtest.unit("celery-flower")
def test_flower_lists_every_worker_and_metrics_report_them_online(host):
    only(host, "flower")
    expected = worker_nodes(host)
    # Flower learns of workers from their replies and heartbeats: on a busy host both may lag.
    deadline = time.time() + 180
    while True:
        code, body = _flower(host, "/api/workers?refresh=1", auth=True)
        seen = set(json.loads(body)) if code == 200 else set()
        metrics_code, metrics = _flower(host, "/metrics", auth=False)
        offline = {n for n in expected if f'flower_worker_online{{worker="{n}"}} 1.0' not in metrics}
        if (expected <= seen and not offline) or time.time() > deadline:
            break
        time.sleep(5)
    assert expected <= seen
    assert metrics_code == 200
    assert not offline, f"/metrics does not report these workers online: {sorted(offline)}"


# --------------------------------------------------------------------------------------------
# Behaviour through the broker (driven from the beat/Flower host)
# --------------------------------------------------------------------------------------------
ROUNDTRIP = """
import json, time
from app.celery import app
calls = {
    "default": ("app.tasks.math.add", [2, 3], {}),
    "high": ("app.tasks.urgent.ping", [], {"sent_at": time.time()}),
    "long": ("app.tasks.long.sleep", [0.1], {"tag": "roundtrip"}),
    "low": ("app.tasks.bulk.notify", ["molecule"], {"message": "hi"}),
}
out = {}
for queue, (name, args, kwargs) in calls.items():
    r = app.send_task(name, args=args, kwargs=kwargs, queue=queue)
    out[queue] = r.get(timeout=90)
print(json.dumps(out))
"""


def test_a_task_round_trips_on_every_queue(host):
    only(host, "celery_beat")
    results = json.loads(celery_python(host, ROUNDTRIP))
    assert results["default"] == 5
    assert results["high"]["waited"] >= 0
    assert results["long"] == "roundtrip"
    assert results["low"] == {"user": "molecule", "message": "hi"}


BEAT_TRACE = """
import json
from app.state import redis_client
print(json.dumps([float(x) for x in redis_client().lrange("kit:beat:trace", 0, -1)]))
"""


def test_beat_runs_its_task_once_per_interval(host):
    only(host, "celery_beat")
    interval = float(hv(host)["celery_beat_environment"]["CELERY_BEAT_TRACE_INTERVAL"])
    deadline = time.time() + 4 * interval + 30
    while True:
        stamps = json.loads(celery_python(host, BEAT_TRACE))
        if len(stamps) >= 4 or time.time() > deadline:
            break
        time.sleep(5)
    assert len(stamps) >= 4, stamps
    recent = stamps[-4:]
    gaps = [b - a for a, b in zip(recent, recent[1:])]
    # never twice (a second beat would halve a gap), never skipped
    assert all(0.5 * interval < g < 1.5 * interval for g in gaps), gaps


# --------------------------------------------------------------------------------------------
# Logs: journald keeps every line of a busy instance
# --------------------------------------------------------------------------------------------
LOG_LINES = 80_000
LOG_BURST = """
import json
from app.celery import app
r = app.send_task("app.tasks.probe.record", kwargs={{"log_lines": {lines}}}, queue={queue!r})
r.get(timeout=600)
print(json.dumps(r.id))
"""


def _single_systemd_consumer(host) -> tuple[str, str, str] | None:
    """(queue, host, instance) of a queue that exactly one instance consumes, on a systemd host."""
    runner = host.backend.ansible_runner
    consumers: dict[str, list] = {}
    for name in runner.get_hosts("celery_workers"):
        variables = runner.get_variables(name)
        for inst in variables.get("celery_worker_instances", []):
            for queue in inst["queues"]:
                consumers.setdefault(queue, []).append(
                    (name, inst["name"], variables.get("celery_common_service_manager", "systemd")))
    for queue, found in sorted(consumers.items()):
        if len(found) == 1 and found[0][2] == "systemd":
            return queue, found[0][0], found[0][1]
    return None


def test_worker_units_carry_the_journal_rate_limit(host):
    """systemd applied the instances' LogRateLimit*= (a directive it did not know would read 0 here)."""
    only(host, "celery_workers")
    if manager(host) != "systemd":
        pytest.skip("supervisor writes the workers' logs to files: no journald rate limit applies")
    want_burst = str(hv(host).get("celery_worker_log_rate_limit_burst", 200000))
    want_interval = str(hv(host).get("celery_worker_log_rate_limit_interval", "30s"))
    for inst in hv(host)["celery_worker_instances"]:
        shown = host.check_output("systemctl show -p LogRateLimitBurst -p LogRateLimitIntervalUSec "
                                  "celery-worker@%s", inst["name"])
        assert f"LogRateLimitBurst={want_burst}" in shown, shown
        assert f"LogRateLimitIntervalUSec={want_interval}" in shown, shown


@labtest.unit("systemd-journald")
def test_the_journal_keeps_every_line_of_a_burst_of_worker_logs(host):
    """One task logs LOG_LINES lines as fast as it can: more than journald's default rate limit lets
    through in its 30-s window (10000 lines, scaled by free disk space: about 37,500 on the lab's
    disks), fewer than the units' LogRateLimitBurst (celery_worker_log_rate_limit_burst). Under TCG a
    task logs about 500 lines/s, 15,000 per window: the default limit would not drop any, so the test
    could not fail there and runs only on a lab with KVM."""
    only(host, "celery_beat")
    if _lab_state()["accel"] != "kvm":
        pytest.skip(f"the lab runs under {_lab_state()['accel']}: too slow to log past journald's default limit")
    target = _single_systemd_consumer(host)
    if target is None:
        pytest.skip("no queue with a single consumer under systemd in this fleet")
    queue, name, instance = target
    worker = host.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)
    since = worker.check_output("date +%s")
    task_id = json.loads(celery_python(host, LOG_BURST.format(lines=LOG_LINES, queue=queue),
                                       timeout=660).splitlines()[-1])
    unit = f"celery-worker@{instance}"
    deadline, count = time.time() + 120, 0
    while time.time() < deadline:
        count = int(worker.check_output(
            f"sudo journalctl -u {unit} --since @{since} -o cat | grep -c 'probe {task_id} log line' || true"))
        if count >= LOG_LINES:
            break
        time.sleep(5)
    suppressed = worker.run(f"sudo journalctl -u systemd-journald --since @{since} -o cat | grep -i suppressed").stdout
    assert count == LOG_LINES, f"{unit} on {name}: {count} of {LOG_LINES} lines in the journal; {suppressed}"


# --------------------------------------------------------------------------------------------
# Flower in a browser, as an operator opens it through the lab's tunnel
# --------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "images"


def _lab_state() -> dict:
    """lab/labctl's record of this scenario's lab: VMs, forwarded ports, accelerator."""
    lab = f"mol-{os.environ.get('MOLECULE_SCENARIO_NAME', _SCENARIO.name)}"
    return json.loads((REPO / ".cache" / "lab" / "run" / lab / "state.json").read_text())


def _tunnel_port(host) -> int | None:
    """The 127.0.0.1 port lab/labctl forwards to this VM's Flower (None: the scenario opens none)."""
    [vm] = [vm for vm in _lab_state()["vms"] if vm["name"] == host.backend.get_hostname()]
    return vm["forwards"].get("flower")


def _chromium(*args: str) -> str:
    """Headless Chromium on the controller (Debian's package, installed by lab/lab.mk)."""
    out = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1440,900", "--virtual-time-budget=10000", *args],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@labtest.unit("celery-flower")
def test_flower_in_a_browser_logs_in_and_lists_every_worker(host):
    only(host, "flower")
    port = _tunnel_port(host)
    if port is None:
        pytest.skip("this scenario opens no tunnel to Flower (platforms[].lab_forwards)")
    password = hv(host)["celery_flower_basic_auth_password"]
    base = f"http://admin:{password}@127.0.0.1:{port}"
    expected = worker_nodes(host)
    workers = _chromium("--dump-dom", f"{base}/workers")
    assert 'id="workers-table"' in workers, workers[-2000:]
    missing = sorted(n for n in expected if n not in workers)
    assert not missing, f"Flower's workers page, rendered in Chromium, does not list {missing}"
    tasks = _chromium("--dump-dom", f"{base}/tasks")
    assert 'id="tasks-table"' in tasks, tasks[-2000:]
    assert _chromium("--dump-dom", f"http://127.0.0.1:{port}/workers").count("workers-table") == 0, (
        "the workers page rendered without the password")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for page in ("workers", "tasks"):
        shot = SCREENSHOTS / f"flower-{page}.png"
        _chromium(f"--screenshot={shot}", f"{base}/{page}")
        assert shot.stat().st_size > 10_000, f"{shot} is (nearly) empty"
