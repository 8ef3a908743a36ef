"""What the HTTP API and the CLI share: starting, describing, cancelling tasks."""
from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import states, uuid
from celery.result import AsyncResult, GroupResult
from redis.exceptions import LockError
from redis.lock import Lock

from celeryconfig.broker import app_redis_url

from .. import canvas
from ..celery import app
from ..tasks import bulk, failing, io, long, math, urgent
from . import security

log = logging.getLogger(__name__)

# Every Redis and broker wait of a producer request is bounded, so a Redis that is down or
# unreachable costs a caller a few seconds and a 503, not a hung thread: the workers' own
# settings (retry forever, 120 s socket timeouts) suit a worker, not a request.
SOCKET_TIMEOUT = 3.0
app.conf.update(
    broker_connection_timeout=SOCKET_TIMEOUT,
    broker_transport_options={**app.conf.broker_transport_options, "socket_timeout": SOCKET_TIMEOUT,
                              "socket_connect_timeout": SOCKET_TIMEOUT, "max_retries": 1},
    task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
    redis_socket_timeout=SOCKET_TIMEOUT,
    redis_socket_connect_timeout=SOCKET_TIMEOUT,
)

# The single-flight lock guards three Redis round trips (each at most SOCKET_TIMEOUT): it must
# outlive them by far, and publishing happens after it is released.
LOCK_TTL = 30.0
# A reserved run that was never published (the producer died in between) blocks for this long.
RESERVATION_TTL = 60


@lru_cache(maxsize=1)
def producer_redis() -> redis.Redis:
    """The app's Redis (locks, single-flight keys) with the producer's short timeouts."""
    return redis.Redis.from_url(app_redis_url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=SOCKET_TIMEOUT, health_check_interval=30)


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "Redis or the broker cannot be reached" (answered with 503)."""
    from kombu.exceptions import OperationalError
    return (OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            ConnectionError, TimeoutError)


def healthy() -> dict:
    """Ping the app's Redis and the result backend; raises one of ``unavailable_errors()``."""
    producer_redis().ping()
    app.backend.client.ping()
    return {"ok": True}


class AlreadyRunning(Exception):
    def __init__(self, task_id: str):
        super().__init__(f"a run is already in progress: {task_id}")
        self.task_id = task_id


class Busy(Exception):
    """The single-flight lock could not be taken in time."""


def _start_add(p):
    return math.add.delay(int(p.get("x", 2)), int(p.get("y", 2)))


STARTERS = {
    "add": _start_add,
    "ping": lambda p: urgent.ping.delay(p.get("sent_at")),
    # The long task is single-flight however it is started (POST /reports or /tasks/process).
    "process": lambda p: start_single_flight("report", p),
    "sleep": lambda p: long.sleep.delay(float(p.get("seconds", 1.0)), p.get("tag")),
    "fetch": lambda p: io.fetch.delay(security.fetch_url(p["url"])),
    "notify": lambda p: notify_result(p),
    "record": lambda p: bulk.record.delay(p.get("event", "api")),
    "boom": lambda p: failing.boom.delay(p.get("reason", "broken on purpose")),
    "chain": lambda p: canvas.arithmetic_chain(int(p.get("x", 1))).delay(),
    "group": lambda p: _saved(canvas.pairs_group(security.canvas_size(p)).delay()),
    "chord": lambda p: canvas.sum_of_pairs_chord(security.canvas_size(p)).delay(),
}


def notify_result(p):
    return bulk.notify.delay(p.get("user", "someone"), p.get("message", "hello"))


def _saved(group_result: GroupResult) -> GroupResult:
    group_result.save()  # so the group can be looked up by id later
    return group_result


def start(kind: str, params: dict | None = None):
    try:
        starter = STARTERS[kind]
    except KeyError:
        raise KeyError(f"unknown task kind {kind!r}; known: {', '.join(sorted(STARTERS))}") from None
    return starter(params or {})


def describe(task_id: str) -> dict:
    """State, progress, result or error of a task (or of a saved group)."""
    group = GroupResult.restore(task_id, app=app)
    if group is not None:
        return {"id": task_id, "state": "SUCCESS" if group.successful() else
                ("FAILURE" if group.failed() else "PENDING"),
                "completed": group.completed_count(), "total": len(group),
                "result": group.get(timeout=1) if group.ready() and group.successful() else None}
    result = AsyncResult(task_id, app=app)
    state = result.state
    info = {"id": task_id, "state": state, "progress": None, "result": None,
            "error": None, "traceback": None}
    if state == "PROGRESS" and isinstance(result.info, dict):
        info["progress"] = {"current": result.info.get("current"), "total": result.info.get("total")}
    elif state == states.SUCCESS:
        info["result"] = result.result
        if isinstance(result.result, dict) and {"current", "total"} <= result.result.keys():
            info["progress"] = {"current": result.result["current"], "total": result.result["total"]}
    elif state in states.PROPAGATE_STATES:
        info["error"] = repr(result.result)
        info["traceback"] = result.traceback
    return info


def cancel(task_id: str) -> dict:
    """Revoke a task; a running one is terminated (SIGTERM to the pool process)."""
    app.control.revoke(task_id, terminate=True, signal="SIGTERM")
    return {"id": task_id, "revoked": True}


# Extends the key's expiry only while it still holds this run's id.
_EXTEND_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_DELETE_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _current_ttl() -> int:
    """The current-run key lives no longer than the run's result: once the result has expired
    the id reads PENDING, and a key still holding it would refuse every later start."""
    expires = app.conf.result_expires or 86400
    return int(expires.total_seconds() if hasattr(expires, "total_seconds") else expires)


def start_single_flight(name: str = "report", params: dict | None = None,
                        lock_timeout: float = 4.0) -> AsyncResult:
    """Start the long ``process`` task unless one started this way still runs.

    As in the FastAPI post, whether a run is "still running" is read from its Celery state, so
    a worker that dies never leaves anything held. The lock guards only the read of the current
    run and the reservation of the next one (its id, written before it is published): a slow
    or failing publish happens outside the lock, and anyone arriving meanwhile sees the
    reserved id (PENDING) and gets ``AlreadyRunning``. The key expires: after
    ``RESERVATION_TTL`` if the run was never published, after ``result_expires`` otherwise.
    """
    params = params or {}
    total, step = int(params.get("total", 10)), float(params.get("step_seconds", 1.0))
    r = producer_redis()
    current_key = f"kit:singleflight:{name}:current"
    lock = Lock(r, f"kit:singleflight:{name}:lock", timeout=LOCK_TTL)
    if not lock.acquire(blocking_timeout=lock_timeout):
        raise Busy(name)
    try:
        current = r.get(current_key)
        if current and AsyncResult(current, app=app).state not in states.READY_STATES:
            raise AlreadyRunning(current)
        task_id = uuid()
        r.set(current_key, task_id, ex=RESERVATION_TTL)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("single-flight %s: the lock expired inside its critical section", name)
    try:
        result = long.process.apply_async((total, step), task_id=task_id)
    except BaseException:
        try:  # free the slot for the next caller; with Redis gone, RESERVATION_TTL does it
            r.eval(_DELETE_IF_OURS, 1, current_key, task_id)
        except unavailable_errors():
            pass
        raise
    r.eval(_EXTEND_IF_OURS, 1, current_key, task_id, _current_ttl())
    return result
