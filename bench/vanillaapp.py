"""Celery out of the box: only the broker and result backend URLs are set.

Everything else is Celery 5.7's default: one queue (``celery``), prefetch multiplier 4, early
acknowledgement, no task events, no per-child limits.
"""
import os

from celery import Celery

from bench.tasks import apply_overrides, register

app = Celery("vanilla", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_RESULT_BACKEND"])
register(app)
apply_overrides(app)
