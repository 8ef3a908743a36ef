"""The periodic task run by beat (schedule in celeryconfig/beat.py)."""
import time

from ..celery import app
from ..state import redis_client

TRACE_KEY = "kit:beat:trace"


@app.task
def beat_trace():
    """Append this run's time to a Redis list, so duplicate or missing runs are visible."""
    now = time.time()
    redis_client().rpush(TRACE_KEY, f"{now:.3f}")
    return now
