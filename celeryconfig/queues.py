"""Queues and routes: tasks of similar duration share a queue (see reliability.py for why).

- ``high``    latency-sensitive, short tasks; a worker keeps one in reserve at most
- ``default`` ordinary short tasks
- ``long``    slow tasks (seconds to minutes); never prefetched behind each other
- ``low``     bulk, fire-and-forget work where throughput matters more than latency
"""
from kombu import Exchange, Queue

from ._env import ConfigError, csv

DECLARED_QUEUES = ("high", "default", "long", "low")

task_default_queue = "default"
task_create_missing_queues = False
task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in DECLARED_QUEUES)

_DEFAULT_ROUTES = {
    "app.tasks.urgent.*": "high",
    "app.tasks.math.*": "default",
    "app.tasks.io.*": "default",
    "app.tasks.failing.*": "default",
    "app.tasks.periodic.*": "default",
    "app.tasks.long.*": "long",
    "app.tasks.bulk.*": "low",
}


def _routes() -> dict:
    routes = dict(_DEFAULT_ROUTES)
    for item in csv("CELERY_TASK_ROUTES", ()):
        pattern, sep, queue = item.partition("=")
        if not sep or not pattern.strip() or not queue.strip():
            raise ConfigError("CELERY_TASK_ROUTES", item, "each item must be TASK_PATTERN=QUEUE")
        routes[pattern.strip()] = queue.strip()
    for pattern, queue in routes.items():
        if queue not in DECLARED_QUEUES:
            raise ConfigError("CELERY_TASK_ROUTES", f"{pattern}={queue}",
                              f"queue {queue!r} is not declared; declared: {', '.join(DECLARED_QUEUES)}")
    return routes


task_routes = {pattern: {"queue": queue} for pattern, queue in _routes().items()}
