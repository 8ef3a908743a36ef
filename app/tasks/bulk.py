"""Bulk and fire-and-forget work (queue ``low``)."""
from ..celery import app
from ..state import redis_client


@app.task(ignore_result=True)
def record(event):
    """Fire-and-forget: count an event. No result is stored (``ignore_result``)."""
    redis_client().hincrby("kit:events", event, 1)


@app.task
def notify(user, message="hello"):
    """Send a notification; its rate limit comes from celeryconfig/ratelimits.py."""
    redis_client().rpush(f"kit:notified:{user}", message)
    return {"user": user, "message": message}
