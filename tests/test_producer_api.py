"""The producer HTTP API, served by uvicorn for real, against real workers."""
import time

import httpx
import pytest

from support import procs

pytestmark = pytest.mark.usefixtures("workers")


@pytest.fixture(scope="module")
def api(redis_server, log_dir):
    port = procs.free_port()
    server = procs.Proc("producer-api", [str(procs.VENV_BIN / "kit-producer"), "serve",
                                         "--port", str(port), "--workers", "2"], log_dir)
    try:
        procs.wait_for_port(port, timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.stop()


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
        codes = list(pool.map(lambda _: api.post("/reports", json={"total": 3, "step_seconds": 0.5}).status_code,
                              range(8)))
    assert codes.count(202) == 1, codes
    assert set(codes) <= {202, 409, 503}
