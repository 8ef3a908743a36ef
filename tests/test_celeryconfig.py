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


# Passwords with every character that has a meaning in a URL; each piece between two such
# characters must stay out of every message.
SPECIAL_PASSWORDS = ["Zq7@Wx9-one", "Zq7:Wx9-two", "Zq7/Wx9-three", "Zq7#Wx9-four", "Zq7%Wx9-five",
                     "Zq7?Wx9-six", "Aa1@Bb2:Cc3/Dd4#Ee5%Ff6?Gg7"]


def _pieces(password):
    import re
    return [p for p in re.split(r"[@:/#%?]", password) if len(p) >= 3]


def _quoted(password):
    from urllib.parse import quote
    return quote(password, safe="")


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_percent_encoded_passwords_are_accepted_and_masked(password):
    url = f"redis://:{_quoted(password)}@10.0.0.5:6379/0"
    done = run_config({"CELERY_BROKER_URL": url, "APP_REDIS_URL": url.replace("/0", "/2")}, "--json")
    assert done.returncode == 0, done.stderr
    conf = json.loads(done.stdout)
    assert conf["broker_url"] == "redis://:********@10.0.0.5:6379/0"
    assert conf["app_redis_url"] == "redis://:********@10.0.0.5:6379/2"
    for piece in _pieces(password) + [_quoted(password)]:
        assert piece not in done.stdout + done.stderr


def _check_url(variable, url):
    """What the kit prints for ``url`` in ``variable``: the error, or the URL as shown by
    ``python -m celeryconfig``. In-process: the same functions the import runs."""
    from celeryconfig.__main__ import mask
    from celeryconfig._env import ConfigError
    from celeryconfig.broker import _redis_url
    os.environ[variable] = url
    try:
        return True, mask(_redis_url(variable, "redis://127.0.0.1:6379/0"))
    except ConfigError as exc:
        return False, str(exc)


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
@pytest.mark.parametrize("variable", ["CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "APP_REDIS_URL"])
def test_a_bad_url_is_refused_without_showing_its_password(variable, password, monkeypatch):
    """An unencoded password (or a forgotten host) is refused; the message masks the password."""
    monkeypatch.setenv(variable, "")
    for url in (f"redis://:{password}@10.0.0.5:6379/0", f"redis://:{password}", f"amqp://guest:{password}@h/"):
        accepted, message = _check_url(variable, url)
        if accepted:
            # Valid as written ("Zq7:Wx9" is a legal password; "redis://:Zq7@Wx9-one" has the host
            # "Wx9-one", and a host name is never masked); everything before the last "@" must be.
            assert url.startswith("redis://:"), url
            hidden = _pieces(url[len("redis://:"):url.rindex("@")])
        else:
            assert variable in message and "********" in message, message
            hidden = _pieces(password)
        for piece in hidden:
            assert piece not in message, f"{piece!r} of the password leaked: {message}"


def test_a_refused_url_reaches_stderr_masked():
    password = SPECIAL_PASSWORDS[-1]
    done = run_config({"CELERY_BROKER_URL": f"redis://:{password}@10.0.0.5:6379/0"})
    assert done.returncode != 0 and "CELERY_BROKER_URL" in done.stderr and "********" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for piece in _pieces(password):
        assert piece not in done.stderr, done.stderr


def test_celery_and_redis_decode_a_percent_encoded_password(tmp_path, log_dir):
    """A real redis-server with requirepass: the kit's broker, backend and app Redis all log in."""
    password = "a@b:c/d#e%f?g+h i"
    port = procs.free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {tmp_path}\n'
                    f'requirepass "{password}"\n')
    conf.chmod(0o600)
    server = procs.Proc(f"redis-auth-{port}", ["redis-server", str(conf)], log_dir)
    try:
        procs.wait_for_port(port)
        base = f"redis://:{_quoted(password)}@127.0.0.1:{port}"
        probe = ("from app.celery import app\n"
                 "from app.state import redis_client\n"
                 "with app.connection_for_write() as conn:\n"
                 "    conn.ensure_connection(max_retries=1)\n"
                 "    conn.default_channel.client.ping()\n"
                 "assert app.backend.client.ping()\n"
                 "assert redis_client().ping()\n"
                 "print('logged in')\n")
        env = {"CELERY_BROKER_URL": f"{base}/0", "CELERY_RESULT_BACKEND": f"{base}/1",
               "APP_REDIS_URL": f"{base}/2"}
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "APP_"))}
        done = subprocess.run([sys.executable, "-c", probe], env={**clean, **env},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "logged in" in done.stdout, done.stderr[-2000:]
        wrong = {k: v.replace(_quoted(password), _quoted(password + "x")) for k, v in env.items()}
        done = subprocess.run([sys.executable, "-c", probe], env={**clean, **wrong},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, "a wrong password logged in: the test proves nothing"
    finally:
        server.stop()
