"""The kit's Celery configuration, one concern per module, loaded with ``config_from_object``.

The app's own Redis URL (``APP_REDIS_URL``, locks and counters) is kept out of the Celery
settings on purpose: Celery shows its settings to anyone who can read a worker's ``conf`` (Flower,
``celery inspect conf``) and masks only the broker and backend URLs.

Every deployment-specific value is read from an environment variable when this package is
imported; an invalid value stops the importing process with a message naming the variable.
``python -m celeryconfig`` prints the effective configuration with secrets masked.
"""
from .broker import (  # noqa: F401
    broker_connection_max_retries,
    broker_connection_retry_on_startup,
    broker_url,
    broker_use_ssl,
    redis_backend_health_check_interval,
    result_backend,
    result_backend_transport_options,
)
from . import transport as _transport  # noqa: F401  (kombu's redis/rediss transports: the kit's, see transport.py)
from .serializers import accept_content, result_accept_content, result_serializer, task_serializer  # noqa: F401
from .timezone import enable_utc, timezone  # noqa: F401
from .ratelimits import rate_limit_annotations as _rate_limit_annotations
from .queues import DECLARED_QUEUES, task_create_missing_queues, task_default_queue, task_queues, task_routes  # noqa: F401
from .reliability import (  # noqa: F401
    broker_transport_options,
    result_expires,
    task_acks_late,
    task_reject_on_worker_lost,
    task_track_started,
    worker_cancel_long_running_tasks_on_connection_loss,
    worker_concurrency,
    worker_max_memory_per_child,
    worker_max_tasks_per_child,
    worker_prefetch_multiplier,
    worker_queues,
)
from .reliability import track_started_annotations as _track_started_annotations
from .events import result_extended, task_send_sent_event, worker_send_task_events  # noqa: F401
from .beat import (  # noqa: F401
    beat_max_loop_interval,
    beat_schedule,
    beat_scheduler,
    beat_trace_interval,
    redbeat_key_prefix,
    redbeat_lock_timeout,
    redbeat_redis_options,
    redbeat_redis_url,
)
from .redelivery import max_redeliveries as _max_redeliveries  # noqa: F401  (connects the cap's signals)


# Per-task settings from several concerns, merged by task name.
task_annotations: dict = {}
for _annotations in (_rate_limit_annotations, _track_started_annotations):
    for _task, _options in _annotations.items():
        task_annotations.setdefault(_task, {}).update(_options)


def settings() -> dict:
    """The effective settings: every lowercase public name of this package."""
    return {name: value for name, value in globals().items()
            if name.islower() and not name.startswith("_") and not callable(value)
            and not hasattr(value, "__path__") and type(value).__name__ != "module"}
