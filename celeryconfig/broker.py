"""Broker and result backend: Redis for both, each in its own database."""
from urllib.parse import urlsplit

from ._env import MASK, ConfigError, text

_SCHEMES = {"redis", "rediss", "redis+socket"}


def _unparseable(url: str) -> str:
    """What an error may show of a URL that does not parse: its scheme. Where the password of a
    malformed URL ends is anyone's guess, so nothing after the scheme is shown."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def _redis_url(name: str, default: str) -> str:
    """The URL in ``name``, checked; errors show it with the password masked.

    A password goes into the URL percent-encoded (``@ : / # % ?`` and every other reserved
    character, e.g. Ansible's ``urlencode | replace('/', '%2F')`` or Python's
    ``quote(password, safe='')``); kombu and redis-py decode it again.
    """
    url = text(name, default)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        # The exception's text may quote part of the password: not shown.
        raise ConfigError(name, _unparseable(url), "malformed URL: no valid host and port (percent-encode "
                                                   "reserved characters such as @ : / # % ? in the password)") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(name, url, f"scheme must be one of {sorted(_SCHEMES)}", secret=True)
    if parts.scheme != "redis+socket" and not parts.hostname:
        raise ConfigError(name, _unparseable(url), "URL has no host")
    if parts.fragment or "#" in url:
        raise ConfigError(name, _unparseable(url), "URL has a '#' (percent-encode '#' in the password as %23)")
    path = parts.path.lstrip("/")
    if path and not path.isdigit():
        raise ConfigError(name, url, "the database after the host must be a number, e.g. /0 "
                                     "(percent-encode '/' in the password as %2F)", secret=True)
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
