"""Every sample task, run by real workers through a real Redis broker."""
import time
import uuid

import pytest
from celery import states
from celery.result import AsyncResult

from app import canvas
from app.tasks import bulk, failing, io, long, math, urgent

pytestmark = pytest.mark.usefixtures("workers")


def wait_for_state(result, wanted, timeout=20.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        state = result.state
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in wanted:
            return state
        time.sleep(0.1)
    raise AssertionError(f"{result.id} never reached {wanted}; states seen: {seen}")


def test_add_round_trip():
    assert math.add.delay(2, 3).get(timeout=20) == 5


@pytest.mark.parametrize("task, args, queue, worker", [
    (urgent.ping, (), "high", "fast"),
    (math.add, (1, 1), "default", "fast"),
    (long.sleep, (0.1, "x"), "long", "slow"),
    (bulk.notify, ("routing",), "low", "slow"),
])
def test_task_lands_on_its_queue(task, args, queue, worker):
    result = task.apply_async(args)
    result.get(timeout=30)
    meta = result.backend.get_task_meta(result.id)
    assert meta["queue"] == queue
    assert meta["worker"].startswith(f"{worker}@")


def test_routed_message_waits_in_its_redis_list_until_a_consumer_takes_it(celery_app):
    """With the `low` consumer paused, a bulk task sits in the Redis list named `low`."""
    from redis import Redis
    r = Redis.from_url(celery_app.conf.broker_url)
    celery_app.control.cancel_consumer("low", destination=[w for w in _workers(celery_app, "slow")],
                                       reply=True)
    try:
        result = bulk.notify.delay("paused", "waiting")
        time.sleep(0.5)
        assert r.llen("low") == 1
        assert result.state == states.PENDING
    finally:
        celery_app.control.add_consumer("low", destination=_workers(celery_app, "slow"), reply=True)
    assert result.get(timeout=30)["message"] == "waiting"
    assert r.llen("low") == 0


def test_sending_to_an_undeclared_queue_is_refused():
    from celery.exceptions import QueueNotFound
    with pytest.raises(QueueNotFound):
        math.add.apply_async((1, 2), queue="no-such-queue")


def _workers(app, prefix):
    return [host for reply in app.control.ping(timeout=1.0) for host in reply
            if host.startswith(prefix + "@")]


def test_progress_states_are_visible_while_the_task_runs():
    result = long.process.delay(total=6, step_seconds=0.4)
    wait_for_state(result, {"PROGRESS"})
    progress = []
    while not result.ready():
        if result.state == "PROGRESS":
            progress.append(result.info["current"])
        time.sleep(0.1)
    assert result.get(timeout=5) == {"current": 6, "total": 6, "status": "done"}
    # The task reports each step as it finishes, the last one (6) just before it returns: progress
    # seen mid-way, never beyond the total.
    assert progress and 1 <= min(progress) < 6 and max(progress) <= 6
    assert progress == sorted(progress)
    assert all(p <= 6 for p in progress) and result.info["total"] == 6


def test_revoke_terminates_a_running_task(celery_app):
    result = long.process.delay(total=100, step_seconds=0.3)
    wait_for_state(result, {"PROGRESS"})
    result.revoke(terminate=True)
    assert wait_for_state(result, {states.REVOKED}, timeout=15) == states.REVOKED
    # the worker survives and keeps serving its queue
    assert long.sleep.delay(0.1, "after-revoke").get(timeout=30) == "after-revoke"


def test_retry_with_backoff_until_success():
    key = uuid.uuid4().hex
    result = io.flaky.delay(key, 2)
    assert result.get(timeout=60) == {"attempts": 3, "retries": 2}


def test_retry_limit_ends_in_failure(rdb):
    key = uuid.uuid4().hex
    result = io.flaky.delay(key, 100)
    with pytest.raises(ConnectionError):
        result.get(timeout=90)
    assert int(rdb.get(f"kit:flaky:{key}")) == io.flaky.max_retries + 1


def test_rate_limit_from_config_is_in_effect(celery_app):
    assert celery_app.conf.task_annotations["app.tasks.bulk.notify"]["rate_limit"] == "4/s"
    user = uuid.uuid4().hex
    started = time.monotonic()
    results = [bulk.notify.delay(user, str(i)) for i in range(9)]
    for r in results:
        r.get(timeout=60)
    elapsed = time.monotonic() - started
    # 9 tasks at 4/s need at least 2 s; unlimited they finish in well under 1 s
    assert elapsed >= 1.8, f"9 notify tasks took only {elapsed:.2f}s: rate limit not applied"


def test_unlimited_tasks_are_not_slowed():
    started = time.monotonic()
    results = [math.add.delay(i, i) for i in range(9)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(9)]
    assert time.monotonic() - started < 1.8


def test_chain():
    assert canvas.arithmetic_chain(1).delay().get(timeout=30) == 56


def test_group():
    assert canvas.pairs_group(5).delay().get(timeout=30) == [0, 2, 4, 6, 8]


def test_chord():
    assert canvas.sum_of_pairs_chord(10).delay().get(timeout=30) == 90


def test_fire_and_forget_runs_but_stores_no_result(rdb):
    event = uuid.uuid4().hex
    result = bulk.record.delay(event)
    deadline = time.monotonic() + 20
    while rdb.hget("kit:events", event) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rdb.hget("kit:events", event) == "1"
    time.sleep(0.3)
    assert AsyncResult(result.id, app=result.app).state == states.PENDING  # nothing was stored
    assert result.backend.get(result.backend.get_key_for_task(result.id)) is None


def test_failure_keeps_state_and_traceback():
    result = failing.boom.delay("disk on fire")
    with pytest.raises(failing.ReportError, match="disk on fire"):
        result.get(timeout=20)
    assert result.state == states.FAILURE
    assert "ReportError: disk on fire" in result.traceback


def test_fetch_reads_a_url_over_http(tmp_path):
    import http.server
    import threading
    (tmp_path / "page.txt").write_text("x" * 123)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/page.txt"
        assert io.fetch.delay(url).get(timeout=30) == {"status": 200, "bytes": 123}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("queues, expected_multiplier", [("low", 16), ("high,low", 1)])
def test_worker_prefetch_follows_the_queue_class(celery_app, log_dir, queues, expected_multiplier):
    """A real worker reserves multiplier x concurrency messages; the multiplier comes from its queues."""
    from support import procs
    name = f"prefetch-{queues.replace(',', '-')}"
    worker = procs.start_worker(log_dir, name, queues, concurrency=1)
    try:
        procs.wait_for_workers(celery_app, [name])
        stats = celery_app.control.inspect(destination=_workers(celery_app, name), timeout=5).stats()
        (node_stats,) = stats.values()
        assert node_stats["prefetch_count"] == expected_multiplier
    finally:
        worker.stop()


def test_started_state_is_tracked_only_for_slow_tasks():
    slow = long.process.delay(total=3, step_seconds=0.5)
    assert wait_for_state(slow, {states.STARTED, "PROGRESS"}) in {states.STARTED, "PROGRESS"}
    slow.get(timeout=30)
    assert not math.add._get_app().conf.task_track_started
    assert long.process.track_started and not math.add.track_started


def test_app_redis_url_is_not_shown_in_the_workers_conf(celery_app):
    """Flower and `celery inspect conf` show worker settings; the app's Redis URL is not one of them."""
    (conf,) = celery_app.control.inspect(destination=_workers(celery_app, "fast"), timeout=5).conf().values()
    assert "app_redis_url" not in conf
    assert conf["task_acks_late"] is True
