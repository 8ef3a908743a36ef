"""monitoring/: the Prometheus config and rules pass promtool, their unit tests pass and can fail, the
exporter configuration really sees the kit's queues, and the Grafana dashboard queries only metrics
that the scrape targets export.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from roles_support import REPO
from support import procs

MONITORING = REPO / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
RULES = PROMETHEUS / "rules" / "celery-kit.yml"
RULE_TESTS = PROMETHEUS / "rules" / "celery-kit.test.yml"
EXPORTER_ENV = MONITORING / "redis-exporter" / "prometheus-redis-exporter.env"
DASHBOARD = MONITORING / "grafana" / "celery-kit.json"
# The commands the celery_redis role allows its exporter user (celery-auth.conf.j2).
EXPORTER_COMMANDS = yaml.safe_load((REPO / "ansible" / "roles" / "celery_redis" / "vars" / "main.yml").read_text()
                                   )["_celery_redis_exporter_commands"]

# What the scrape targets export (flower/events.py in Flower 2.2; redis_exporter's key checks and
# its own health), plus Prometheus's per-target `up`.
FLOWER_METRICS = {"flower_events_total", "flower_task_runtime_seconds_bucket", "flower_task_runtime_seconds_sum",
                  "flower_task_runtime_seconds_count", "flower_task_prefetch_time_seconds",
                  "flower_worker_prefetched_tasks", "flower_worker_online",
                  "flower_worker_number_of_currently_executing_tasks"}
REDIS_EXPORTER_METRICS = {"redis_key_size", "redis_up"}
SCRAPED_METRICS = FLOWER_METRICS | REDIS_EXPORTER_METRICS | {"up"}

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt package prometheus;"
                                                             " `make setup` installs it)")


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@needs_promtool
def test_prometheus_config_is_valid():
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rules_are_valid():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rule_unit_tests_pass():
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for group in tests for case in group.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert alerts == fired, f"alerts without a firing test case: {alerts - fired}"


# Each mutation breaks one decision the unit tests are meant to guard.
MUTATIONS = {
    "surge processes are not workers": ('worker!~".+-surge@.+"', 'worker!~"none"'),
    "beat alerts when its task was never seen": ("or vector(0)", ""),
    "priority lists count for their queue": (r"\x06\x16[0-9]", r"\x06\x16[0-2]"),
    "one rare failure is not a failure rate": (">= 5", ">= 1"),
    "a vanished worker is still offline": ("[1h]", "[1m]"),
    "Flower down silences the workers": ('unless on () (up{job="celery-flower"} == 0)\n        for: 5m',
                                         "\n        for: 5m"),
}


@needs_promtool
@pytest.mark.parametrize("old,new", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_rule_unit_tests_fail_on_a_broken_rule(tmp_path, old, new):
    text = RULES.read_text()
    assert old in text
    (tmp_path / RULES.name).write_text(text.replace(old, new, 1))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, "the unit tests did not notice:\n" + result.stdout


def test_scrape_config_names_both_jobs_the_rules_use():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    used = set()
    for rule in _rules():
        used |= set(re.findall(r'job="([^"]+)"', rule["expr"]))
    assert used == jobs == {"celery-flower", "celery-redis"}


def _exporter_env() -> dict[str, str]:
    env = {}
    for line in EXPORTER_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def test_exporter_checks_every_declared_queue_and_the_dead_letter_list():
    from celeryconfig.queues import DECLARED_QUEUES
    from celeryconfig.redelivery import DEAD_LETTER_KEY

    env = _exporter_env()
    single = set(env["REDIS_EXPORTER_CHECK_SINGLE_KEYS"].split(","))
    patterns = set(env["REDIS_EXPORTER_CHECK_KEYS"].split(","))
    assert single == {f"db0={q}" for q in DECLARED_QUEUES} | {f"db1={DEAD_LETTER_KEY}"}
    assert patterns == {f"db0={q}??[369]" for q in DECLARED_QUEUES}


def _series(value: str) -> str:
    """A label value as a PromQL string literal (control characters as \\xNN)."""
    out = []
    for ch in value:
        out.append("\\\\" if ch == "\\" else '\\"' if ch == '"' else f"\\x{ord(ch):02x}" if ord(ch) < 32 else ch)
    return "".join(out)


@needs_promtool
@pytest.mark.skipif(not (shutil.which("prometheus-redis-exporter") or shutil.which("redis_exporter")),
                    reason="redis_exporter not installed (apt package prometheus-redis-exporter; `make setup`)")
def test_exporter_and_rules_count_real_celery_messages(tmp_path, celery_app, log_dir):
    """Messages published by the sample app (a `long` task carries priority 9) land where the exporter
    configuration looks, and the recording rule and dead-letter alert read them right."""
    from kombu import Connection

    from celeryconfig.redelivery import DEAD_LETTER_KEY

    port, web = procs.free_port(), procs.free_port()
    redis = procs.start_redis(log_dir, port)
    exporter = None
    try:
        with Connection(f"redis://127.0.0.1:{port}/0") as conn:
            for _ in range(2):
                celery_app.send_task("app.tasks.long.sleep", args=(1,), connection=conn)
            celery_app.send_task("app.tasks.math.add", args=(1, 2), connection=conn)
        subprocess.run(["redis-cli", "-p", str(port), "-n", "1", "LPUSH", DEAD_LETTER_KEY, "{}"], check=True,
                       capture_output=True)
        # The exporter logs in as the role's read-only user, with the role's command list.
        cli = ["redis-cli", "-p", str(port)]
        subprocess.run([*cli, "ACL", "SETUSER", "metrics", "reset", "on", ">metrics-password-0123", "%R~*", "-@all",
                        *(f"+{c}" for c in EXPORTER_COMMANDS)], check=True, capture_output=True)
        subprocess.run([*cli, "ACL", "LOG", "RESET"], check=True, capture_output=True)
        binary = shutil.which("prometheus-redis-exporter") or shutil.which("redis_exporter")
        env = {**_exporter_env(), "REDIS_ADDR": f"redis://127.0.0.1:{port}", "REDIS_PASSWORD": "metrics-password-0123",
               "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{web}"}
        assert env["REDIS_USER"] == "metrics"
        exporter = procs.Proc("redis-exporter", [binary], log_dir, env=env)
        procs.wait_for_port(web)
        deadline, text = time.monotonic() + 15, ""
        while time.monotonic() < deadline and 'redis_up 1' not in text:
            text = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=5).read().decode()
            time.sleep(0.2)
        # A second scrape: every command of a full scrape ran as the user at least once.
        text = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=5).read().decode()
        denied = subprocess.run([*cli, "ACL", "LOG"], check=True, capture_output=True, text=True).stdout
        write = subprocess.run([*cli, "--user", "metrics", "--pass", "metrics-password-0123", "--no-auth-warning",
                                "LPUSH", "default", "x"], capture_output=True, text=True).stdout
    finally:
        if exporter:
            exporter.stop()
        redis.stop()

    assert 'redis_up 1' in text, "the exporter could not log in as the metrics user"
    assert denied.strip() == "", f"Redis refused the exporter user a command: {denied}"
    assert "NOPERM" in write, f"the exporter user could write: {write!r}"
    samples = re.findall(r'^redis_key_size\{db="(db\d+)",key="([^"]*)"\} (\S+)$', text, flags=re.M)
    assert any("\x06\x16" in key for _, key, _ in samples), f"no priority list exported: {samples}"
    labels = 'job="celery-redis", instance="redis:9121"'
    series = [{"series": f'redis_key_size{{{labels}, db="{db}", key="{_series(key)}"}}',
               "values": f"{float(value):g}x10"} for db, key, value in samples]
    series.append({"series": 'redis_up{job="celery-redis", instance="redis:9121"}', "values": "1x10"})
    want = {"default": 1, "high": 0, "long": 2, "low": 0}
    annotations = next(r["annotations"] for r in _rules() if r.get("alert") == "CeleryDeadLetterNotEmpty")
    annotations = {k: v.replace("{{ $value }}", "1") for k, v in annotations.items()}
    case = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": "queue:redis_key_size:sum", "eval_time": "5m", "exp_samples": [
            {"labels": f'queue:redis_key_size:sum{{job="celery-redis", instance="redis:9121", queue="{q}"}}',
             "value": n} for q, n in want.items()]}],
        "alert_rule_test": [{"eval_time": "5m", "alertname": "CeleryDeadLetterNotEmpty", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "job": "celery-redis", "instance": "redis:9121", "db": "db1",
                           "key": DEAD_LETTER_KEY}, "exp_annotations": annotations}]}],
    }]}
    (tmp_path / "real.test.yml").write_text(yaml.safe_dump(case))
    result = _promtool("test", "rules", "real.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return [(p.get("title", ""), t["expr"]) for p in panels for t in p.get("targets", [])]


def _metric_names(expr: str) -> set[str]:
    """Identifiers that name series: not functions, keywords, label names or string contents."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(?:\{|\[|\)|$|\s|,|[-+*/<>=!]))", expr))
    functions = set(re.findall(r"([a-zA-Z_]+)\s*\(", expr))
    keywords = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan", "le"}
    return {n for n in names - functions - keywords if not re.fullmatch(r"\d+[smhdwy]?", n)}


def test_dashboard_parses_and_has_the_promised_panels():
    titles = " ".join(title.lower() for title, _ in _dashboard_exprs())
    for word in ("queue", "workers online", "task", "fail", "runtime"):
        assert word in titles, word


def test_dashboard_queries_only_scraped_or_recorded_metrics():
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    exprs = _dashboard_exprs()
    assert exprs, "no panel queries anything"
    for title, expr in exprs:
        names = _metric_names(expr)
        assert names, f"{title}: found no metric in {expr!r}"
        assert names <= SCRAPED_METRICS | recorded, f"{title}: {names - SCRAPED_METRICS - recorded} not scraped"


def test_the_metric_check_sees_an_unknown_metric():
    assert _metric_names('sum by (queue) (rate(celery_tasks_total{state="x"}[5m])) > 0') == {"celery_tasks_total"}
    assert _metric_names("histogram_quantile(0.95, sum by (le, task) (rate(flower_task_runtime_seconds_bucket[5m])))"
                         ) == {"flower_task_runtime_seconds_bucket"}
