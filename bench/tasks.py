"""Bench-only tasks, registered under the same names on the kit's app and on a defaults app.

Each task records what the benchmark measures in Redis (``BENCH_REDIS_URL``, its own database),
so the numbers do not depend on whether a configuration stores results.
"""
import hashlib
import os
import time

import redis

_client = None
_held = []

WAIT_INSTANT = "bench:wait:instant"
WAIT_LONG = "bench:wait:long"
DONE = "bench:done"
LEAK_BYTES = 1024


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def register(app) -> None:
    @app.task(name="bench.tasks.sleep1")
    def sleep1(sent_at, seconds=1.0):
        """The slow task of the mixed load: records how long it waited, then sleeps."""
        _redis().rpush(WAIT_LONG, time.time() - sent_at)
        time.sleep(seconds)

    @app.task(name="bench.tasks.spin")
    def spin(sent_at, cpu_seconds=0.25):
        """A CPU-bound slow task: records how long it waited, then hashes until it has used
        ``cpu_seconds`` of CPU time (so its work is fixed; its wall time grows when the cores
        are shared)."""
        _redis().rpush(WAIT_LONG, time.time() - sent_at)
        end = time.process_time() + cpu_seconds
        digest = b"bench"
        while time.process_time() < end:
            for _ in range(500):
                digest = hashlib.sha256(digest).digest()
        return digest.hex()[:8]

    @app.task(name="bench.tasks.instant")
    def instant(sent_at):
        """The latency-sensitive task of the mixed load: records how long it waited."""
        _redis().rpush(WAIT_INSTANT, time.time() - sent_at)

    @app.task(name="bench.tasks.noop")
    def noop():
        """A short task on the ``default`` queue; counts completions."""
        _redis().incr(DONE)

    @app.task(name="bench.tasks.bulk_noop", ignore_result=True)
    def bulk_noop():
        """The same work as a bulk, fire-and-forget task (like ``app.tasks.bulk.record``)."""
        _redis().incr(DONE)

    @app.task(name="bench.tasks.hold", ignore_result=True)
    def hold():
        """A bulk task that keeps ``LEAK_BYTES`` per call: a slow leak such as an unbounded cache."""
        _held.append(bytearray(LEAK_BYTES))
        _redis().incr(DONE)


def apply_overrides(app) -> None:
    """Extra settings for a labelled grid point or proposal (JSON object in ``BENCH_CONF``)."""
    import json
    raw = os.environ.get("BENCH_CONF")
    if raw:
        app.conf.update(json.loads(raw))
