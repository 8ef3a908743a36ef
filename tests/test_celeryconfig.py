"""`python -m celeryconfig`: every override takes effect, every bad override is refused by name."""
import json
import os
import subprocess
import sys

import pytest

from support import procs


def run_config(env, *args):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "APP_"))}
    return subprocess.run([sys.executable, "-m", "celeryconfig", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def effective(env=None):
    done = run_config(env or {}, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_defaults_are_the_kits_recommendations():
    conf = effective()
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["task_track_started"] is False
    assert conf["task_annotations"]["app.tasks.long.process"] == {"track_started": True}
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] > 1800 + 600
    assert conf["broker_connection_retry_on_startup"] is True
    assert conf["worker_send_task_events"] is True and conf["task_send_sent_event"] is True
    assert conf["timezone"] == "Asia/Seoul" and conf["enable_utc"] is True
    assert conf["task_queues"] == ["Queue(high)", "Queue(default)", "Queue(long)", "Queue(low)"]
    assert "beat-trace" in conf["beat_schedule"]


@pytest.mark.parametrize("env, key, expected", [
    ({"CELERY_BROKER_URL": "redis://10.0.0.5:6380/3"}, "broker_url", "redis://10.0.0.5:6380/3"),
    ({"CELERY_RESULT_BACKEND": "redis://10.0.0.5:6380/4"}, "result_backend", "redis://10.0.0.5:6380/4"),
    ({"APP_REDIS_URL": "redis://10.0.0.5:6380/5"}, "app_redis_url", "redis://10.0.0.5:6380/5"),
    ({"CELERY_TIMEZONE": "Europe/Berlin"}, "timezone", "Europe/Berlin"),
    ({"CELERY_SERIALIZER": "json"}, "task_serializer", "json"),
    ({"CELERY_WORKER_PREFETCH_MULTIPLIER": "8"}, "worker_prefetch_multiplier", 8),
    ({"CELERY_WORKER_QUEUES": "low"}, "worker_prefetch_multiplier", 16),
    ({"CELERY_WORKER_QUEUES": "default,low"}, "worker_prefetch_multiplier", 4),
    ({"CELERY_WORKER_QUEUES": "long,low"}, "worker_prefetch_multiplier", 1),
    ({"CELERY_WORKER_CONCURRENCY": "3"}, "worker_concurrency", 3),
    ({"CELERY_WORKER_MAX_TASKS_PER_CHILD": "50"}, "worker_max_tasks_per_child", 50),
    ({"CELERY_WORKER_MAX_MEMORY_PER_CHILD": "120000"}, "worker_max_memory_per_child", 120000),
    ({"CELERY_VISIBILITY_TIMEOUT": "86400"}, "broker_transport_options", {"visibility_timeout": 86400}),
    ({"CELERY_RESULT_EXPIRES": "600"}, "result_expires", 600),
    ({"CELERY_RATE_LIMIT_NOTIFY": "5/s"}, "task_annotations",
     {"app.tasks.bulk.notify": {"rate_limit": "5/s"}, "app.tasks.long.process": {"track_started": True},
      "app.tasks.long.sleep": {"track_started": True}}),
    ({"CELERY_BEAT_TRACE_INTERVAL": "7"}, "beat_trace_interval", 7),
])
def test_override_takes_effect(env, key, expected):
    assert effective(env)[key] == expected


def test_route_override_moves_a_task_to_another_declared_queue():
    conf = effective({"CELERY_TASK_ROUTES": "app.tasks.math.*=high"})
    assert conf["task_routes"]["app.tasks.math.*"] == {"queue": "high"}


def test_secrets_are_masked():
    done = run_config({"CELERY_BROKER_URL": "redis://:s3cret-pw@10.0.0.5:6379/0",
                       "CELERY_RESULT_BACKEND": "redis://celery:other-pw@10.0.0.5:6379/1"})
    assert done.returncode == 0, done.stderr
    assert "s3cret-pw" not in done.stdout and "other-pw" not in done.stdout
    assert "redis://:********@10.0.0.5:6379/0" in done.stdout


def test_queues_listing():
    done = run_config({}, "--queues")
    assert done.stdout.split() == ["high", "default", "long", "low"]


@pytest.mark.parametrize("variable, value, reason", [
    ("CELERY_WORKER_PREFETCH_MULTIPLIER", "four", "positive integer"),
    ("CELERY_WORKER_PREFETCH_MULTIPLIER", "0", "positive integer"),
    ("CELERY_WORKER_PREFETCH_MULTIPLIER", "-2", "positive integer"),
    ("CELERY_WORKER_CONCURRENCY", "0", "positive integer"),
    ("CELERY_WORKER_CONCURRENCY", "2.5", "positive integer"),
    ("CELERY_WORKER_MAX_TASKS_PER_CHILD", "lots", "positive integer"),
    ("CELERY_SERIALIZER", "pickle", "executes code"),
    ("CELERY_SERIALIZER", "msgpackish", "unknown serializer"),
    ("CELERY_BROKER_URL", "redis://localhost:notaport/0", "malformed"),
    ("CELERY_BROKER_URL", "amqp//broker", "scheme"),
    ("CELERY_BROKER_URL", "redis:///0", "no host"),
    ("CELERY_RESULT_BACKEND", "redis://host:6379/zero", "database"),
    ("CELERY_TIMEZONE", "Mars/Olympus_Mons", "time zone"),
    ("CELERY_TASK_ROUTES", "app.tasks.math.*=urgent", "not declared"),
    ("CELERY_TASK_ROUTES", "app.tasks.math.*", "TASK_PATTERN=QUEUE"),
    ("CELERY_WORKER_QUEUES", "high,bulk", "not declared"),
    ("CELERY_VISIBILITY_TIMEOUT", "600", "must exceed"),
    ("CELERY_RATE_LIMIT_NOTIFY", "fast", "rate must look like"),
])
def test_bad_override_is_refused_naming_the_variable(variable, value, reason):
    done = run_config({variable: value})
    assert done.returncode != 0
    assert variable in done.stderr and reason in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_worker_refuses_to_start_on_a_bad_override(log_dir):
    worker = procs.Proc("worker-bad-config", procs.celery_argv("worker", "-Q", "default"), log_dir,
                        env={"CELERY_TIMEZONE": "Nowhere/Atlantis"})
    try:
        worker.popen.wait(60)
    finally:
        worker.stop()
    assert worker.popen.returncode != 0
    assert "CELERY_TIMEZONE" in worker.log() and "Nowhere/Atlantis" in worker.log()
