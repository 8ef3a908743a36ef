"""Benchmarks: the kit's Celery configuration against Celery's defaults, side by side.

``python -m bench`` (``make bench``) runs all three benchmarks against a private redis-server
and real ``celery worker`` processes, prints the ratios and writes ``bench/results/``.
"""
