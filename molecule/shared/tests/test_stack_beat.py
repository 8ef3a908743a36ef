"""Behaviour through the broker, driven from the beat host: a task round-trips on every queue,
beat runs its task once per interval."""

import json
import time

from stack import celery_python, hv

testinfra_hosts = ["ansible://celery_beat"]

ROUNDTRIP = """
import json, time
from app.celery import app
calls = {
    "default": ("app.tasks.math.add", [2, 3], {}),
    "high": ("app.tasks.urgent.ping", [], {"sent_at": time.time()}),
    "long": ("app.tasks.long.sleep", [0.1], {"tag": "roundtrip"}),
    "low": ("app.tasks.bulk.notify", ["molecule"], {"message": "hi"}),
}
out = {}
for queue, (name, args, kwargs) in calls.items():
    r = app.send_task(name, args=args, kwargs=kwargs, queue=queue)
    out[queue] = r.get(timeout=90)
print(json.dumps(out))
"""


def test_a_task_round_trips_on_every_queue(host):
    results = json.loads(celery_python(host, ROUNDTRIP))
    assert results["default"] == 5
    assert results["high"]["waited"] >= 0
    assert results["long"] == "roundtrip"
    assert results["low"] == {"user": "molecule", "message": "hi"}


BEAT_TRACE = """
import json
from app.state import redis_client
print(json.dumps([float(x) for x in redis_client().lrange("kit:beat:trace", 0, -1)]))
"""


def test_beat_runs_its_task_once_per_interval(host):
    interval = float(hv(host)["celery_beat_environment"]["CELERY_BEAT_TRACE_INTERVAL"])
    deadline = time.time() + 4 * interval + 30
    while True:
        stamps = json.loads(celery_python(host, BEAT_TRACE))
        if len(stamps) >= 4 or time.time() > deadline:
            break
        time.sleep(5)
    assert len(stamps) >= 4, stamps
    recent = stamps[-4:]
    gaps = [b - a for a, b in zip(recent, recent[1:])]
    # never twice (a second beat would halve a gap), never skipped
    assert all(0.5 * interval < g < 1.5 * interval for g in gaps), gaps
