"""Beat schedule. Exactly one beat runs in a fleet (the roles enforce it)."""
from celery.schedules import crontab

from ._env import positive_int

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
