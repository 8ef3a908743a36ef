"""Serializers: JSON only. Pickle would let anyone who can write to the broker run code."""
from ._env import ConfigError, text

_ALLOWED = {"json"}
_REFUSED = {"pickle": "pickle executes code from the broker; the kit refuses it",
            "yaml": "yaml is refused for the same reason as pickle"}

serializer = text("CELERY_SERIALIZER", "json")
if serializer in _REFUSED:
    raise ConfigError("CELERY_SERIALIZER", serializer, _REFUSED[serializer])
if serializer not in _ALLOWED:
    raise ConfigError("CELERY_SERIALIZER", serializer, f"unknown serializer; allowed: {sorted(_ALLOWED)}")

task_serializer = serializer
result_serializer = serializer
accept_content = [serializer]
result_accept_content = [serializer]
