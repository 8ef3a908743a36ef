"""Round-trip one sample task per queue through the deployed stack and print where each ran.

Copied to a Celery host and run there by lab-demo.yml, as the service user, with the host's
Celery environment: it is what `make lab` shows after the rollout.
"""
import json
import time

from app import canvas
from app.celery import app
from app.tasks import bulk, long, math, urgent

started = time.monotonic()
calls = {
    "high": urgent.ping.delay(time.time()),
    "default": math.add.delay(20, 22),
    "long": long.process.delay(3, 0.5),
    "low": bulk.notify.delay("lab-demo", "hello from make lab"),
}
rows = []
for queue, result in calls.items():
    value = result.get(timeout=120)
    meta = result.backend.get_task_meta(result.id)
    rows.append({"queue": queue, "task": meta.get("name"), "ran_on": meta.get("worker"),
                 "landed_on": meta.get("queue"), "result": value})
rows.append({"queue": "default", "task": "chord(add x 10) | xsum", "ran_on": "-",
             "landed_on": "default", "result": canvas.sum_of_pairs_chord(10).delay().get(timeout=120)})
workers = sorted(host for reply in app.control.ping(timeout=2.0) for host in reply)
print(json.dumps({"tasks": rows, "workers_online": workers,
                  "seconds": round(time.monotonic() - started, 1)}, indent=2, default=str))
