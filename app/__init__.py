"""Sample Celery app deployed by the kit (``celery -A app worker``)."""
from .celery import app as celery_app

__all__ = ("celery_app",)
