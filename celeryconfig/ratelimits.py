"""Rate limits, kept out of the task decorators so operators can change them per deployment.

Celery enforces ``rate_limit`` per worker *instance*, not fleet-wide: with two worker
hosts consuming the queue, the fleet runs up to twice the limit.
"""
import re

from ._env import ConfigError, text

_RATE = re.compile(r"^\d+(\.\d+)?(/[smh])?$")


def _rate(name: str, default: str) -> str:
    value = text(name, default)
    if not _RATE.match(value):
        raise ConfigError(name, value, "rate must look like 10/s, 30/m or 100/h")
    return value


notify_rate_limit = _rate("CELERY_RATE_LIMIT_NOTIFY", "30/m")

rate_limit_annotations = {
    "app.tasks.bulk.notify": {"rate_limit": notify_rate_limit},
}
