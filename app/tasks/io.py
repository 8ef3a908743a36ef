"""I/O-bound work with automatic retries (queue ``default``)."""
import urllib.request

from celeryconfig.reliability import MAX_RETRY_BACKOFF

from ..celery import app
from ..state import redis_client

RETRY = dict(
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,           # 1s, 2s, 4s, ... between attempts
    retry_backoff_max=MAX_RETRY_BACKOFF,
    retry_jitter=True,            # spread retries so a recovering service is not hit at once
    max_retries=5,
)


@app.task(**RETRY)
def fetch(url, timeout=10):
    """Fetch a URL and return its status and size; network errors are retried."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - caller chooses URL
        return {"status": response.status, "bytes": len(response.read())}


@app.task(bind=True, **RETRY)
def flaky(self, key, failures):
    """Fail with ``ConnectionError`` on the first ``failures`` attempts, then succeed.

    Stands in for a service that is briefly down; counts attempts in Redis under ``key``.
    """
    attempt = redis_client().incr(f"kit:flaky:{key}")
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} of {key}: service unavailable")
    return {"attempts": attempt, "retries": self.request.retries}
