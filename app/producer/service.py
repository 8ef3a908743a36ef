"""What the HTTP API and the CLI share: starting, describing, cancelling tasks."""
from __future__ import annotations

from celery import states
from celery.result import AsyncResult, GroupResult
from redis.lock import Lock

from .. import canvas
from ..celery import app
from ..state import redis_client
from ..tasks import bulk, failing, io, long, math, urgent


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
    "process": lambda p: long.process.delay(int(p.get("total", 10)), float(p.get("step_seconds", 1.0))),
    "sleep": lambda p: long.sleep.delay(float(p.get("seconds", 1.0)), p.get("tag")),
    "fetch": lambda p: io.fetch.delay(p["url"]),
    "notify": lambda p: notify_result(p),
    "record": lambda p: bulk.record.delay(p.get("event", "api")),
    "boom": lambda p: failing.boom.delay(p.get("reason", "broken on purpose")),
    "chain": lambda p: canvas.arithmetic_chain(int(p.get("x", 1))).delay(),
    "group": lambda p: _saved(canvas.pairs_group(int(p.get("n", 5))).delay()),
    "chord": lambda p: canvas.sum_of_pairs_chord(int(p.get("n", 5))).delay(),
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


def start_single_flight(name: str = "report", params: dict | None = None,
                        lock_timeout: float = 4.0) -> AsyncResult:
    """Start the long ``process`` task unless one started this way still runs.

    As in the FastAPI post: the lock only guards reading and writing the id of the current
    run, so a worker that dies never leaves the lock held; whether a run is "still running"
    is read from its Celery state.
    """
    r = redis_client()
    current_key = f"kit:singleflight:{name}:current"
    lock = Lock(r, f"kit:singleflight:{name}:lock", timeout=10)
    if not lock.acquire(blocking_timeout=lock_timeout):
        raise Busy(name)
    try:
        current = r.get(current_key)
        if current and AsyncResult(current, app=app).state not in states.READY_STATES:
            raise AlreadyRunning(current)
        result = long.process.delay(int((params or {}).get("total", 10)),
                                    float((params or {}).get("step_seconds", 1.0)))
        r.set(current_key, result.id)
        return result
    finally:
        lock.release()
