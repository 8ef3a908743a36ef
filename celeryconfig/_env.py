"""Typed readers for environment overrides.

Every value a deployment changes comes from an environment variable (that is how the
systemd units and supervisor programs configure the services). A bad value raises
``ConfigError`` naming the variable, so ``python -m celeryconfig`` and the worker
itself refuse to start instead of running with a half-understood setting.
"""
from __future__ import annotations

import os


class ConfigError(SystemExit):
    """An environment override has a value the kit refuses.

    A ``SystemExit`` on purpose: whatever imports the configuration (a worker, beat,
    Flower, ``python -m celeryconfig``) stops with one line naming the variable and a
    non-zero status, instead of a traceback or, worse, running with a guessed value.
    """

    def __init__(self, variable: str, value: str, why: str):
        self.variable = variable
        self.value = value
        super().__init__(f"celeryconfig: invalid {variable}={value!r}: {why}")


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
