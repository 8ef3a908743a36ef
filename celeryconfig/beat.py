"""Beat schedule, and exactly one beat sending it at run time.

The roles put beat on one host, but an inventory cannot guarantee it at run time (a ``--limit`` run,
an unreachable old host, a beat moved to another host). So beat runs RedBeat's scheduler: the schedule
state (each entry's last run) lives in Redis, and a beat sends only while it holds a lock there,
which it renews on every tick (at least every ``beat_max_loop_interval`` seconds). A second beat
started anywhere blocks waiting for the lock and sends nothing; when the first one dies or its host
powers off, the lock expires after ``CELERY_BEAT_LOCK_TIMEOUT`` seconds and the second takes over
from the shared state, so every periodic run still happens once.
"""
from urllib.parse import unquote, urlsplit, urlunsplit

from celery.schedules import crontab

from ._env import ConfigError, positive_int
from .broker import app_redis_url

beat_trace_interval = positive_int("CELERY_BEAT_TRACE_INTERVAL", 30)

beat_schedule = {
    # Leaves the time of each run in Redis so "once per interval, never twice" can be checked.
    "beat-trace": {
        "task": "app.tasks.periodic.beat_trace",
        "schedule": float(beat_trace_interval),
        # A run that could not start within one interval is dropped, not piled up.
        "options": {"expires": float(beat_trace_interval)},
    },
    # Crontab entries follow CELERY_TIMEZONE (03:00 local time), not the host's clock.
    "nightly-summary": {
        "task": "app.tasks.bulk.record",
        "schedule": crontab(hour=3, minute=0),
        "args": ("nightly-summary",),
    },
}

beat_scheduler = "redbeat.RedBeatScheduler"
beat_max_loop_interval = 5
redbeat_lock_timeout = positive_int("CELERY_BEAT_LOCK_TIMEOUT", 30)
if redbeat_lock_timeout < 3 * beat_max_loop_interval:
    raise ConfigError("CELERY_BEAT_LOCK_TIMEOUT", str(redbeat_lock_timeout),
                      f"must be at least {3 * beat_max_loop_interval}s (three renewals at the longest"
                      f" beat loop of {beat_max_loop_interval}s), or the active beat could lose its lock")
redbeat_key_prefix = "redbeat:"

# The lock and the schedule state live in the app's Redis (APP_REDIS_URL). Its password goes into
# the options mapping, which Celery masks wherever it shows settings (Flower, `inspect conf`),
# never into a URL setting that would be shown whole.
_parts = urlsplit(app_redis_url)
_host = _parts.hostname or ""
if ":" in _host:
    _host = f"[{_host}]"
redbeat_redis_url = urlunsplit((_parts.scheme, _host + (f":{_parts.port}" if _parts.port else ""),
                                _parts.path, _parts.query, ""))
redbeat_redis_options = {"socket_timeout": 10, "retry_period": 60}
if _parts.password:
    redbeat_redis_options["password"] = unquote(_parts.password)
if _parts.username:
    redbeat_redis_options["username"] = unquote(_parts.username)
