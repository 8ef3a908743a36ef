"""The producer HTTP API, served by uvicorn for real, against real workers."""
import contextlib
import os
import socket
import subprocess
import threading
import time

import httpx
import pytest
import redis

from support import procs

pytestmark = pytest.mark.usefixtures("workers")


def redis_env(base: str) -> dict:
    return {"CELERY_BROKER_URL": f"{base}/0", "CELERY_RESULT_BACKEND": f"{base}/1", "APP_REDIS_URL": f"{base}/2"}


@contextlib.contextmanager
def serve(log_dir, redis_url, name="producer-api", env=None, workers=2):
    """The API on a free port, its Redis URLs given explicitly (not whatever the environment of
    this test process holds by now: the benchmark harness rewrites it)."""
    port = procs.free_port()
    server = procs.Proc(name, [str(procs.VENV_BIN / "kit-producer"), "serve", "--port", str(port),
                               "--workers", str(workers)], log_dir, env={**redis_env(redis_url), **(env or {})})
    try:
        procs.wait_for_port(port, timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(redis_server, log_dir):
    with serve(log_dir, redis_server) as client:
        yield client


def follow(api, task_id, until, timeout=30.0):
    deadline = time.monotonic() + timeout
    history = []
    while time.monotonic() < deadline:
        body = api.get(f"/tasks/{task_id}").json()
        history.append(body)
        if body["state"] in until:
            return body, history
        time.sleep(0.1)
    raise AssertionError(f"{task_id} never reached {until}: last {history[-1:]}")


def test_served_by_uvicorn(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.headers["server"] == "uvicorn"


def test_start_and_get_result(api):
    response = api.post("/tasks/add", json={"x": 20, "y": 22})
    assert response.status_code == 202
    body, _ = follow(api, response.json()["id"], {"SUCCESS"})
    assert body["result"] == 42


def test_progress_is_reported_while_running(api):
    task_id = api.post("/tasks/process", json={"total": 5, "step_seconds": 0.4}).json()["id"]
    body, history = follow(api, task_id, {"SUCCESS"})
    running = [h["progress"] for h in history if h["state"] == "PROGRESS"]
    assert running, f"no PROGRESS state seen: {[h['state'] for h in history]}"
    assert all(p["total"] == 5 and 1 <= p["current"] < 5 for p in running)
    assert body["progress"] == {"current": 5, "total": 5}


def test_cancel_terminates_a_running_task(api):
    task_id = api.post("/tasks/process", json={"total": 100, "step_seconds": 0.3}).json()["id"]
    follow(api, task_id, {"PROGRESS"})
    assert api.delete(f"/tasks/{task_id}").json() == {"id": task_id, "revoked": True}
    body, _ = follow(api, task_id, {"REVOKED"}, timeout=15)
    assert body["state"] == "REVOKED"


def test_failure_shows_traceback(api):
    task_id = api.post("/tasks/boom", json={"reason": "quota exceeded"}).json()["id"]
    body, _ = follow(api, task_id, {"FAILURE"})
    assert "quota exceeded" in body["error"]
    assert "Traceback" in body["traceback"] and "ReportError: quota exceeded" in body["traceback"]


@pytest.mark.parametrize("kind, params, expected", [
    ("chain", {"x": 1}, 56),
    ("chord", {"n": 4}, 12),
    ("group", {"n": 3}, [0, 2, 4]),
])
def test_canvas_through_the_api(api, kind, params, expected):
    task_id = api.post(f"/tasks/{kind}", json=params).json()["id"]
    body, _ = follow(api, task_id, {"SUCCESS"})
    assert body["result"] == expected


def test_unknown_kind_is_404(api):
    response = api.post("/tasks/launch-missiles", json={})
    assert response.status_code == 404
    assert "launch-missiles" in response.text


def test_single_flight_refuses_a_second_start_while_the_first_runs(api):
    first = api.post("/reports", json={"total": 4, "step_seconds": 0.5})
    assert first.status_code == 202
    first_id = first.json()["id"]
    second = api.post("/reports", json={"total": 4, "step_seconds": 0.5})
    assert second.status_code == 409
    assert second.json()["detail"]["running"] == first_id
    follow(api, first_id, {"SUCCESS"})
    third = api.post("/reports", json={"total": 1, "step_seconds": 0.1})
    assert third.status_code == 202 and third.json()["id"] != first_id
    follow(api, third.json()["id"], {"SUCCESS"})


def test_single_flight_under_concurrent_starts(api):
    """Eight simultaneous starts: exactly one wins."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: api.post("/reports", json={"total": 3, "step_seconds": 0.5}),
                                  range(8)))
    codes = [r.status_code for r in responses]
    assert codes.count(202) == 1, codes
    assert set(codes) <= {202, 409, 503}
    # The winner holds the single flight until it ends; the next test must not meet it.
    follow(api, next(r for r in responses if r.status_code == 202).json()["id"], {"SUCCESS"})


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "gopher://127.0.0.1/", "http://127.0.0.1:9/", "http://localhost:9/",
    "http://[::1]:9/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/",
    "http://[::ffff:127.0.0.1]:9/", "http://100.64.0.1/", "http://0.0.0.0:9/", "http:///nohost",
])
def test_fetch_refuses_other_schemes_and_internal_addresses(api, url):
    response = api.post("/tasks/fetch", json={"url": url})
    assert response.status_code == 422, response.text
    assert "url" in response.json()["detail"]


def test_fetch_allows_an_internal_network_only_when_listed():
    from app.producer import security
    with pytest.raises(security.Refused):
        security.fetch_url("http://127.0.0.1:9/", allow=())
    assert security.fetch_url("http://127.0.0.1:9/", allow=security._networks("127.0.0.0/8")) == "http://127.0.0.1:9/"


@pytest.mark.parametrize("kind", ["group", "chord"])
def test_canvas_size_is_bounded(api, kind):
    response = api.post(f"/tasks/{kind}", json={"n": 1_000_000})
    assert response.status_code == 422 and "KIT_PRODUCER_MAX_CANVAS" in response.text
    assert api.post(f"/tasks/{kind}", json={"n": 100}).status_code == 202


def test_tasks_process_does_not_bypass_the_single_flight(api):
    first = api.post("/reports", json={"total": 3, "step_seconds": 0.5})
    assert first.status_code == 202
    second = api.post("/tasks/process", json={"total": 1, "step_seconds": 0.1})
    assert second.status_code == 409 and second.json()["detail"]["running"] == first.json()["id"]
    follow(api, first.json()["id"], {"SUCCESS"})


def test_a_run_whose_result_expired_no_longer_blocks(redis_server, log_dir, rdb):
    """The current-run key expires with the run's result; an expired result reads PENDING."""
    with serve(log_dir, redis_server, "producer-api-expiry", env={"CELERY_RESULT_EXPIRES": "3"}, workers=1) as api:
        first = api.post("/reports", json={"total": 1, "step_seconds": 0.1})
        assert first.status_code == 202, first.text
        first_id = first.json()["id"]
        follow(api, first_id, {"SUCCESS"})
        assert 0 < rdb.ttl("kit:singleflight:report:current") <= 3
        results = redis.Redis.from_url(f"{redis_server}/1")
        results.delete(f"celery-task-meta-{first_id}")  # what result_expires does
        assert api.get(f"/tasks/{first_id}").json()["state"] == "PENDING"
        deadline = time.monotonic() + 10
        while (code := api.post("/reports", json={"total": 1, "step_seconds": 0.1}).status_code) == 409:
            assert time.monotonic() < deadline, "409 for a run whose result expired long ago"
            time.sleep(0.5)
        assert code == 202


def test_the_lock_cannot_expire_inside_its_critical_section(celery_app, rdb, monkeypatch):
    """A publish slower than the lock's lifetime must not let a second run in."""
    from app.producer import service
    from app.tasks import long
    rdb.delete("kit:singleflight:lockcheck:current")
    monkeypatch.setattr(service, "LOCK_TTL", 1.0, raising=False)
    real_lock = service.Lock
    monkeypatch.setattr(service, "Lock", lambda r, key, timeout: real_lock(r, key, timeout=1.0))
    real_apply, real_delay = long.process.apply_async, long.process.delay

    def slow(fn):
        def publish(*args, **kwargs):
            time.sleep(1.5)
            return fn(*args, **kwargs)
        return publish
    monkeypatch.setattr(long.process, "apply_async", slow(real_apply))
    monkeypatch.setattr(long.process, "delay", slow(real_delay))
    outcomes = []

    def start():
        try:
            outcomes.append(service.start_single_flight("lockcheck", {"total": 1, "step_seconds": 0.01}).id)
        except service.AlreadyRunning as exc:
            outcomes.append(("refused", exc.task_id))
        except service.Busy:
            outcomes.append("busy")
    threads = [threading.Thread(target=start) for _ in range(2)]
    threads[0].start()
    time.sleep(0.2)
    threads[1].start()
    for t in threads:
        t.join(30)
    started = [o for o in outcomes if isinstance(o, str) and o != "busy"]
    assert len(started) == 1, outcomes
    assert ("refused", started[0]) in outcomes, outcomes


def test_token_is_required_when_configured(redis_server, log_dir):
    token = "test-token-0123456789abcdef"
    with serve(log_dir, redis_server, "producer-api-token", env={"KIT_PRODUCER_TOKEN": token}, workers=1) as api:
        assert api.get("/healthz").status_code == 200
        assert api.post("/tasks/add", json={}).status_code == 401
        assert api.get("/tasks/some-id").status_code == 401
        wrong = {"Authorization": "Bearer wrong-token-0123456789"}
        assert api.post("/tasks/add", json={}, headers=wrong).status_code == 401
        assert api.post("/tasks/add", json={}, headers={"Authorization": f"Bearer {token}"}).status_code == 202


def test_serving_beyond_loopback_needs_a_token(log_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_PRODUCER_")}
    done = subprocess.run([str(procs.VENV_BIN / "kit-producer"), "serve", "--host", "0.0.0.0",
                           "--port", str(procs.free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "0.0.0.0" in done.stderr and "KIT_PRODUCER_TOKEN" in done.stderr


@contextlib.contextmanager
def black_hole():
    """A loopback port that accepts connections and never answers (a Redis that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("failure", ["hangs", "refuses"])
def test_redis_down_gives_a_fast_503(log_dir, failure):
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(black_hole()) if failure == "hangs" else procs.free_port()
        api = stack.enter_context(serve(log_dir, f"redis://127.0.0.1:{port}", f"producer-api-{failure}", workers=1))
        for method, path in [("get", "/healthz"), ("post", "/tasks/add"), ("post", "/reports")]:
            started = time.monotonic()
            response = getattr(api, method)(path, **({"json": {}} if method == "post" else {}))
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert elapsed < 10, f"{path} took {elapsed:.1f} s"
            assert "127.0.0.1" not in response.text
