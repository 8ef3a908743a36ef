"""The kit's app (``app.celery:app`` with ``celeryconfig``) plus the bench tasks.

Routes for the bench tasks come from ``CELERY_TASK_ROUTES``, the kit's own override.
"""
from app.celery import app
from bench.tasks import apply_overrides, register

register(app)
apply_overrides(app)
