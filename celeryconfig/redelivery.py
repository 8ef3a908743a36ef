"""Redelivery cap: a task that keeps killing its worker is set aside instead of looping forever.

Late acks with ``task_reject_on_worker_lost`` send a task whose pool process died (the OOM
killer, a crash in a C extension) straight back to its queue. Celery has no limit on that, so a
task that always kills its process would be delivered again and again. Kombu marks every message
that went back to Redis as ``redelivered``; only for those (a first delivery costs nothing):

- the pool process counts, in the result backend's Redis, each execution of a redelivered message
  (key ``celery-kit:executions:<task id>``, expiring with the visibility timeout);
- the worker, receiving a redelivered message whose task already started ``max_redeliveries``
  times after its first delivery, does not run it: it pushes the message to the Redis list
  ``celery-kit:dead-letter`` (task name, id, arguments, queue: enough to send it again by hand),
  logs an error, and revokes it (the message is acknowledged, the result reads REVOKED).

A task therefore runs at most ``1 + CELERY_TASK_MAX_REDELIVERIES`` times. When Redis cannot be
reached for the count, the task runs (the cap never blocks work on its own failure).
"""
from __future__ import annotations

import json
import logging
import time

from celery import signals

from ._env import positive_int
from .reliability import visibility_timeout

max_redeliveries = positive_int("CELERY_TASK_MAX_REDELIVERIES", 3)

EXECUTIONS_KEY = "celery-kit:executions:{}"
DEAD_LETTER_KEY = "celery-kit:dead-letter"

logger = logging.getLogger("celeryconfig.redelivery")


def _redelivered(request) -> bool:
    return bool((getattr(request, "delivery_info", None) or {}).get("redelivered"))


def _redis(task):
    client = getattr(task.backend, "client", None)
    return client if hasattr(client, "incr") else None


@signals.task_prerun.connect
def _count_execution(task=None, task_id=None, **_):
    """In the pool process, when a redelivered message starts running."""
    client = _redis(task)
    if client is None or not _redelivered(task.request):
        return
    key = EXECUTIONS_KEY.format(task_id)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, visibility_timeout + 3600)
    pipe.execute()


@signals.task_received.connect
def _dead_letter_if_over_cap(request=None, **_):
    """In the worker's main process, before a redelivered message is scheduled."""
    if not _redelivered(request):
        return
    client = _redis(request.task)
    if client is None:
        return
    executions = int(client.get(EXECUTIONS_KEY.format(request.id)) or 0)
    if executions < max_redeliveries:
        return
    entry = {
        "id": request.id,
        "task": request.name,
        "args": request.args,
        "kwargs": request.kwargs,
        "queue": (request.delivery_info or {}).get("routing_key"),
        "redeliveries": executions,
        "worker": request.hostname,
        "time": time.time(),
    }
    client.lpush(DEAD_LETTER_KEY, json.dumps(entry, default=repr))
    logger.error("Task %s[%s] was redelivered %d times after it started (CELERY_TASK_MAX_REDELIVERIES=%d):"
                 " moved to the Redis list %s and revoked instead of running it again",
                 request.name, request.id, executions, max_redeliveries, DEAD_LETTER_KEY)
    from celery.worker import state as worker_state
    worker_state.revoked.add(request.id)
