"""Helpers of the deployed-stack checks (molecule/shared/tests/, molecule/default/tests/).

Every check asks the host which service manager runs its Celery services
(``celery_common_service_manager``: systemd units, or supervisor programs).
"""

import json
import os
import shlex
from pathlib import Path

import labtest

APP_ENV = "/etc/celery/common.env"
REPO = Path(__file__).resolve().parents[2]


def hv(host) -> dict:
    return labtest.hostvars(host)


def groups(host) -> list:
    return hv(host).get("group_names", [])


def manager(host) -> str:
    return hv(host).get("celery_common_service_manager", "systemd")


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


def lab_state() -> dict:
    """lab/labctl's record of this scenario's lab (mol-<scenario>): VMs, forwarded ports, accelerator."""
    lab = f"mol-{os.environ.get('MOLECULE_SCENARIO_NAME', 'default')}"
    return json.loads((REPO / ".cache" / "lab" / "run" / lab / "state.json").read_text())


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


def flower_get(host, path: str, auth: bool) -> tuple[int, str]:
    """GET from Flower on its private address, from the Flower host itself (python3, no curl)."""
    url = f"http://{labtest.private_address(host)}:5555{path}"
    creds = f"admin:{hv(host)['celery_flower_basic_auth_password']}" if auth else ""
    out = host.check_output("python3 -c %s %s %s", HTTP_GET, url, creds)
    code, _, body = out.partition("\n")
    return int(code), body
