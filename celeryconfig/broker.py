"""Broker and result backend: Redis for both, each in its own database."""
import os
import ssl
from urllib.parse import parse_qs, urlsplit

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
    if parts.scheme == "rediss":
        _check_tls(name, url, _tls_query(parts.query))
    del port
    return url


def _tls_query(query: str) -> dict:
    return {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}


def _check_tls(name: str, url: str, query: dict) -> None:
    """A rediss:// URL must verify the server: without ``ssl_cert_reqs=required`` kombu would
    connect to whoever answers (it only logs a warning), and the result backend refuses to start."""
    if query.get("ssl_cert_reqs") not in ("required", "CERT_REQUIRED"):
        raise ConfigError(name, url, "a rediss:// URL must verify the server: add ssl_cert_reqs=required "
                                     "and ssl_ca_certs=PATH (the CA that signed Redis' certificate)", secret=True)
    ca = query.get("ssl_ca_certs")
    if ca is not None and not os.access(ca, os.R_OK):
        raise ConfigError(name, url, f"ssl_ca_certs: {ca} is not a readable file", secret=True)


def _use_ssl(url: str) -> dict | None:
    """What ``broker_use_ssl`` must say for a rediss:// URL. kombu, the result backend and
    redis-py read the URL's query themselves; Flower's broker view and RedBeat read this setting
    instead (a rediss:// broker without it makes Flower check against the system CAs)."""
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return None
    query = _tls_query(parts.query)
    options = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if query.get("ssl_ca_certs"):
        options["ssl_ca_certs"] = query["ssl_ca_certs"]
    return options


broker_url = _redis_url("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
result_backend = _redis_url("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")

# The app's own Redis use (single-flight locks, beat trace). Defaults to the broker.
app_redis_url = _redis_url("APP_REDIS_URL", broker_url)

# TLS (rediss://): the broker's certificate checks for the clients that do not read the URL's query.
broker_use_ssl = _use_ssl(broker_url)

# Reconnect instead of dying when Redis restarts under a running worker.
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
redis_backend_health_check_interval = 30
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}
