"""Slow tasks (queue ``long``): progress reporting and cancellation."""
import time

from celeryconfig.reliability import LONG_TASK_TIME_LIMIT

from ..celery import app


@app.task(bind=True, time_limit=LONG_TASK_TIME_LIMIT, soft_time_limit=LONG_TASK_TIME_LIMIT - 30)
def process(self, total=10, step_seconds=1.0):
    """Work through ``total`` steps, publishing ``PROGRESS`` with ``current``/``total`` after each.

    Revoking it with ``terminate=True`` stops it mid-way (the producer's cancel endpoint).
    """
    for current in range(1, total + 1):
        time.sleep(step_seconds)
        self.update_state(state="PROGRESS", meta={"current": current, "total": total})
    return {"current": total, "total": total, "status": "done"}


@app.task(time_limit=LONG_TASK_TIME_LIMIT)
def sleep(seconds=1.0, tag=None):
    """Sleep, then return ``tag``: used to show graceful stop and redelivery."""
    time.sleep(seconds)
    return tag
