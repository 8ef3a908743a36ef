"""Monitoring as an operator runs it: Debian's Prometheus scrapes the fleet with the kit's scrape jobs
and rules (monitoring/prometheus/), and CeleryWorkerOffline fires when a worker instance stops.

Prometheus runs on the controller and reaches Flower's /metrics (control) and redis_exporter
(broker, as the celery_redis role's read-only `metrics` user) through the lab's SSH tunnels
(platforms[].lab_forwards), as it would reach their private addresses in production. The rules are
the kit's, with every `for:` shortened to FOR_LAB: the expressions are what this proves on the real
fleet; the durations themselves are unit-tested by `promtool test rules` (tests/test_monitoring.py).
"""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import labtest
import pytest
import yaml
from stack import REPO, lab_state

PROMETHEUS = REPO / "monitoring" / "prometheus"
FOR_LAB = "10s"
# The instance that is stopped: a worker under systemd, idle during verify, that does not consume
# `default`, where beat's trace task goes (molecule/shared/tests/test_stack_beat.py times that task's runs).
STOPPED_HOST, STOPPED_INSTANCE = "worker2", "bulk"
# Once, from the Redis host's point of view.
testinfra_hosts = ["ansible://redis"]


def _tunnels() -> dict:
    """{forward name: 127.0.0.1 port} of every VM of this scenario's lab (lab/labctl's state)."""
    return {name: port for vm in lab_state()["vms"] for name, port in vm["forwards"].items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """Debian's prometheus binary on the controller, with the kit's jobs pointed at the tunnels."""

    def __init__(self, workdir: Path, targets: dict[str, str]):
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        rules = re.sub(r"(?m)^(\s+for:) \S+$", rf"\1 {FOR_LAB}",
                       (PROMETHEUS / "rules" / "celery-kit.yml").read_text())
        (workdir / "celery-kit.yml").write_text(rules)
        config["rule_files"] = [str(workdir / "celery-kit.yml")]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.until(lambda: self._get("/-/ready", raw=True), 60, "Prometheus never became ready")

    def _get(self, path: str, raw: bool = False):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body = response.read().decode()
        except OSError:
            return None
        return body if raw else json.loads(body)["data"]

    def query(self, expr: str) -> dict[str, float]:
        """{value of the labels that identify the series: value}."""
        data = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})) or {"result": []}
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in data["result"]}

    def alerts(self, name: str) -> list[dict]:
        data = self._get("/api/v1/alerts") or {"alerts": []}
        return [a for a in data["alerts"] if a["labels"].get("alertname") == name]

    def until(self, check, seconds: float, what: str):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited {self.proc.returncode}; see {self.log.name}")
            value = check()
            if value:
                return value
            time.sleep(1)
        pytest.fail(f"{what} within {seconds:.0f} s")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def _online(prom: Prometheus) -> set[str]:
    return {json.loads(k)["worker"] for k, v in prom.query('flower_worker_online{job="celery-flower"}').items()
            if v == 1}


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (make setup installs it)")
@labtest.unit("prometheus-redis-exporter")
def test_prometheus_scrapes_the_fleet_and_fires_worker_offline(host, tmp_path):
    assert labtest.hostvars(host).get("celery_redis_exporter"), "the lab runs redis_exporter on the broker"
    exporter = host.service("prometheus-redis-exporter")
    assert exporter.is_running and exporter.is_enabled
    tunnels = _tunnels()
    prom = Prometheus(tmp_path, {"celery-flower": f"127.0.0.1:{tunnels['flower']}",
                                 "celery-redis": f"127.0.0.1:{tunnels['redis_exporter']}"})
    runner = host.backend.ansible_runner
    worker = host.get_host(f"ansible://{STOPPED_HOST}", ansible_inventory=host.backend.ansible_inventory)
    stopped = f"{STOPPED_INSTANCE}@{STOPPED_HOST}"
    expected = {f"{inst['name']}@{name}" for name in runner.get_hosts("celery_workers")
                for inst in runner.get_variables(name).get("celery_worker_instances", [])}
    assert stopped in expected
    try:
        prom.until(lambda: prom.query("up") and all(v == 1 for v in prom.query("up").values())
                   and len(prom.query("up")) == 2, 60, "both scrape jobs were not up")
        assert list(prom.query('redis_up{job="celery-redis"}').values()) == [1.0], (
            "redis_exporter cannot log in to Redis as its user")
        # The recording rule has its first value one evaluation after the first scrape.
        app_queues = set(labtest.hostvars(host)["celery_common_app_queues"])

        def queues() -> set:
            return {json.loads(k)["queue"] for k in prom.query("queue:redis_key_size:sum")}
        prom.until(lambda: queues() == app_queues, 30,
                   f"queue:redis_key_size:sum does not list the app's queues {sorted(app_queues)}: {queues()}")
        prom.until(lambda: expected <= _online(prom), 120,
                   f"Flower's /metrics did not report every worker online: {sorted(expected - _online(prom))}")
        # Flower also keeps the nodes it saw earlier (release surges are excluded by the rule); only the
        # declared workers matter here.
        assert not [a for a in prom.alerts("CeleryWorkerOffline") if a["labels"]["worker"] in expected]

        worker.check_output(f"sudo systemctl stop celery-worker@{STOPPED_INSTANCE}")
        firing = prom.until(lambda: [a for a in prom.alerts("CeleryWorkerOffline")
                                     if a["state"] == "firing" and a["labels"]["worker"] in expected],
                            120, f"CeleryWorkerOffline did not fire for {stopped}")
        assert [a["labels"]["worker"] for a in firing] == [stopped], firing
        assert firing[0]["labels"]["severity"] == "critical"
    finally:
        worker.run(f"sudo systemctl start celery-worker@{STOPPED_INSTANCE}")
    try:
        prom.until(lambda: stopped in _online(prom) and not [a for a in prom.alerts("CeleryWorkerOffline")
                                                             if a["labels"]["worker"] == stopped], 180,
                   f"{stopped} did not come back online and resolve the alert")
    finally:
        prom.stop()
