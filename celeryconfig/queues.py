"""Queues and routes: tasks of similar duration share a queue (see reliability.py for why).

- ``high``    latency-sensitive, short tasks; a worker keeps one in reserve at most
- ``default`` ordinary short tasks
- ``long``    slow tasks (seconds to minutes); never prefetched behind each other
- ``low``     bulk, fire-and-forget work where throughput matters more than latency

Routes to ``long`` carry message priority 9, the lowest on Redis (where 0, the priority of every
message that sets none, is the highest). Kombu keeps one Redis list per priority step (0, 3, 6, 9)
and a worker's BRPOP asks for step 0 of all its queues before step 9, so a worker that consumes
``high`` (or ``default``) *and* ``long`` gives a free process waiting short work first, and still
never leaves a process idle while a slow task waits (measured in bench/: ``make bench-layouts``).
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
    "app.tasks.probe.*": "default",
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


# Message priority by queue class (Redis: 0 is the highest, and the default). Queues not listed
# carry no priority.
PRIORITY_BY_QUEUE = {"long": 9}


def _route(queue: str) -> dict:
    route = {"queue": queue}
    if queue in PRIORITY_BY_QUEUE:
        route["priority"] = PRIORITY_BY_QUEUE[queue]
    return route


task_routes = {pattern: _route(queue) for pattern, queue in _routes().items()}
