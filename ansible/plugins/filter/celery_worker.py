"""Filters of the celery_worker role, run on the controller: each worker instance with every
default filled in, and the Celery worker command-line options that follow from its settings.
"""
from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean


def _int(value: Any) -> int:
    """``value`` as Jinja's ``int`` filter reads it: ``"50"`` is 50, ``"2.5"`` is 2, and
    anything that is no number (``None`` included) is 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0


def celery_worker_options(settings: dict) -> str:
    """The command-line options of one resolved instance, in this order: the pool; autoscale,
    or concurrency when autoscale is empty; prefetch unless None; the two recycling limits
    unless 0 or unset; --task-events when send_events is true (read as the argument spec reads a
    bool: ``"y"`` and ``" yes"`` are true too); then extra_args."""
    opts = [f"--pool={settings['pool']}"]
    if len(settings["autoscale"]) > 0:
        opts.append(f"--autoscale={settings['autoscale']}")
    else:
        opts.append(f"--concurrency={settings['concurrency']}")
    if settings["prefetch_multiplier"] is not None:
        opts.append(f"--prefetch-multiplier={settings['prefetch_multiplier']}")
    if _int(settings["max_tasks_per_child"]) > 0:
        opts.append(f"--max-tasks-per-child={settings['max_tasks_per_child']}")
    if _int(settings["max_memory_per_child"]) > 0:
        opts.append(f"--max-memory-per-child={settings['max_memory_per_child']}")
    if boolean(settings["send_events"], strict=False):
        opts.append("--task-events")
    return " ".join(str(opt) for opt in opts + settings["extra_args"])


def celery_worker_resolve(instances: list[dict], defaults: dict) -> list[dict]:
    """Each instance as ``name``, ``queues``, then every key of ``defaults`` in its order (the
    instance's own value where it sets one that is not None, else the default), then ``opts``:
    its command-line options (celery_worker_options). Values keep their type: a ``"0"`` from
    the inventory stays a string."""
    resolved = []
    for instance in instances:
        settings = {"name": instance["name"], "queues": instance["queues"]}
        for key, default in defaults.items():
            value = instance.get(key)
            settings[key] = default if value is None else value
        settings["opts"] = celery_worker_options(settings)
        resolved.append(settings)
    return resolved


class FilterModule:
    def filters(self):
        return {"celery_worker_resolve": celery_worker_resolve}
