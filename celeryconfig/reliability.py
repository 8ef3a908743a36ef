"""Reliability: nothing is lost when a worker stops or dies, nothing waits behind a slow task.

- Late acks: a task is acknowledged after it ran, so a worker that dies mid-task leaves the
  message to be delivered again (tasks must therefore be idempotent).
- ``task_reject_on_worker_lost``: when a pool child is killed, the task is requeued at once
  instead of being marked failed.
- Prefetch by queue class: a worker reserves ``multiplier x concurrency`` messages. A reserved
  message waits for a free process of *that* worker even while another worker idles, so queues
  with slow or latency-sensitive tasks prefetch 1; bulk queues may prefetch more. The worker's
  multiplier is the smallest class value among the queues it consumes
  (``CELERY_WORKER_QUEUES``), unless ``CELERY_WORKER_PREFETCH_MULTIPLIER`` says otherwise.
- Connection loss: running tasks are left to finish (see the setting below).
- Redis ``visibility_timeout``: an unacknowledged message is redelivered after this long. It must
  be longer than the longest task plus the longest countdown/ETA the app uses, or a task still
  running (or still waiting for its ETA) would be delivered a second time.
"""
from ._env import ConfigError, csv, positive_int
from .queues import DECLARED_QUEUES

PREFETCH_BY_QUEUE = {"high": 1, "default": 4, "long": 1, "low": 16}

# The longest delay the app itself schedules: retry backoff ceiling (app.tasks.io) and the
# hard time limit of the long queue's tasks (app.tasks.long).
MAX_RETRY_BACKOFF = 600
LONG_TASK_TIME_LIMIT = 1800
MAX_APP_DELAY = MAX_RETRY_BACKOFF + LONG_TASK_TIME_LIMIT

task_acks_late = True
task_reject_on_worker_lost = True
# STARTED costs a result-backend write before every task (5 Redis commands per task, measured in
# bench/). Only the slow tasks, where "is it running yet?" is a real question, pay for it.
task_track_started = False
track_started_annotations = {
    "app.tasks.long.process": {"track_started": True},
    "app.tasks.long.sleep": {"track_started": True},
}
# When the broker connection drops (a Redis restart, a network partition), let running tasks
# finish. Cancelling them (Celery's opt-in) loses them: the cancelled late-acked task cannot
# write its retry state to the unreachable Redis and ends as revoked, its message acknowledged.
# Left running, the task completes and stores its result once Redis is back; its message, which
# can no longer be acknowledged on the lost channel, is delivered again after the visibility
# timeout at the latest: a duplicate, never a loss (tests/test_broker_restart.py).
worker_cancel_long_running_tasks_on_connection_loss = False

worker_queues = csv("CELERY_WORKER_QUEUES", DECLARED_QUEUES)
for _queue in worker_queues:
    if _queue not in DECLARED_QUEUES:
        raise ConfigError("CELERY_WORKER_QUEUES", ",".join(worker_queues),
                          f"queue {_queue!r} is not declared; declared: {', '.join(DECLARED_QUEUES)}")

worker_prefetch_multiplier = positive_int(
    "CELERY_WORKER_PREFETCH_MULTIPLIER", min(PREFETCH_BY_QUEUE[q] for q in worker_queues))
worker_concurrency = positive_int("CELERY_WORKER_CONCURRENCY", None)
worker_max_tasks_per_child = positive_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 10000)
worker_max_memory_per_child = positive_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 256_000)  # KiB

visibility_timeout = positive_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)
if visibility_timeout <= MAX_APP_DELAY:
    raise ConfigError("CELERY_VISIBILITY_TIMEOUT", str(visibility_timeout),
                      f"must exceed the longest task plus countdown the app uses ({MAX_APP_DELAY}s),"
                      " or running tasks are delivered twice")
broker_transport_options = {"visibility_timeout": visibility_timeout}

result_expires = positive_int("CELERY_RESULT_EXPIRES", 24 * 3600)
