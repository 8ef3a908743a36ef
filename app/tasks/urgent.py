"""Latency-sensitive work (queue ``high``)."""
import time

from ..celery import app


@app.task
def ping(sent_at=None):
    """Return how long the message waited before a worker ran it (seconds)."""
    now = time.time()
    return {"received_at": now, "waited": None if sent_at is None else now - sent_at}
