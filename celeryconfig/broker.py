"""Broker and result backend: Redis for both, each in its own database."""
from urllib.parse import urlsplit

from ._env import ConfigError, text

_SCHEMES = {"redis", "rediss", "redis+socket"}


def _redis_url(name: str, default: str) -> str:
    url = text(name, default)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(name, url, f"malformed URL ({exc})") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(name, url, f"scheme must be one of {sorted(_SCHEMES)}")
    if parts.scheme != "redis+socket" and not parts.hostname:
        raise ConfigError(name, url, "URL has no host")
    path = parts.path.lstrip("/")
    if path and not path.isdigit():
        raise ConfigError(name, url, "the database after the host must be a number, e.g. /0")
    del port
    return url


broker_url = _redis_url("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
result_backend = _redis_url("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")

# The app's own Redis use (single-flight locks, beat trace). Defaults to the broker.
app_redis_url = _redis_url("APP_REDIS_URL", broker_url)

# Reconnect instead of dying when Redis restarts under a running worker.
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
redis_backend_health_check_interval = 30
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}
