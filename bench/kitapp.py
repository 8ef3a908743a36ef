"""The kit's app (``app.celery:app`` with ``celeryconfig``) plus the bench tasks.

Routes for the bench tasks come from ``CELERY_TASK_ROUTES``, the kit's own override. Per-task
settings (``task_annotations``: ``track_started`` for the slow tasks, rate limits) are matched by
exact task name, so each bench task gets the annotations of the app task it stands in for.
"""
from app.celery import app
from bench.tasks import apply_overrides, register

STANDS_IN_FOR = {
    "bench.tasks.sleep1": "app.tasks.long.sleep",      # queue long
    "bench.tasks.spin": "app.tasks.long.process",      # queue long
    "bench.tasks.instant": "app.tasks.urgent.ping",    # queue high
    "bench.tasks.noop": "app.tasks.math.add",          # queue default
    "bench.tasks.bulk_noop": "app.tasks.bulk.record",  # queue low, ignore_result
    "bench.tasks.hold": "app.tasks.bulk.record",       # queue low, ignore_result
}

_annotations = dict(app.conf.task_annotations or {})
for _bench, _model in STANDS_IN_FOR.items():
    if _model in _annotations:
        _annotations[_bench] = dict(_annotations[_model])
app.conf.task_annotations = _annotations

register(app)
apply_overrides(app)
