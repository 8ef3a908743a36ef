"""Typed readers for environment overrides.

Every value a deployment changes comes from an environment variable (that is how the
systemd units and supervisor programs configure the services). A bad value raises
``ConfigError`` naming the variable, so ``python -m celeryconfig`` and the worker
itself refuse to start instead of running with a half-understood setting.
"""
from __future__ import annotations

import os
import re

_URL_START = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.S)
MASK = "********"


def mask_url(value: str) -> str:
    """``value`` with any password in it replaced by ``********``.

    Written for URLs that may be malformed, because a password that was not percent-encoded is
    the usual reason a URL is malformed: everything up to the *last* ``@`` is user information
    (a raw ``@``, ``/``, ``#`` or ``?`` in the password stays masked), only the user name before
    its first ``:`` is kept. Without an ``@``, anything after a ``:`` that is not a port number
    is masked too (``redis://:password`` with the host forgotten).
    """
    match = _URL_START.match(value)
    if not match:
        return value
    scheme, rest = match["scheme"], match["rest"]
    at = rest.rfind("@")
    if at >= 0:
        userinfo, location = rest[:at], rest[at + 1:]
        user, colon, _ = userinfo.partition(":")
        return f"{scheme}{user}:{MASK}@{location}" if colon else f"{scheme}{MASK}@{location}"
    authority = rest.partition("/")[0]
    host, colon, port = authority.partition(":")
    if colon and not port.isdigit():
        return f"{scheme}{host}:{MASK}"
    return value


class ConfigError(SystemExit):
    """An environment override has a value the kit refuses.

    A ``SystemExit`` on purpose: whatever imports the configuration (a worker, beat,
    Flower, ``python -m celeryconfig``) stops with one line naming the variable and a
    non-zero status, instead of a traceback or, worse, running with a guessed value.
    """

    def __init__(self, variable: str, value: str, why: str, secret: bool = False):
        """``secret``: the value may hold a password (a URL); it is shown masked, never whole."""
        self.variable = variable
        self.value = mask_url(value) if secret else value
        super().__init__(f"celeryconfig: invalid {variable}={self.value!r}: {why}")


def text(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def positive_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name, raw, "must be a positive integer") from None
    if value <= 0:
        raise ConfigError(name, raw, "must be a positive integer (greater than 0)")
    return value


def boolean(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, raw, "must be one of true/false/yes/no/on/off/1/0")


def csv(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())
