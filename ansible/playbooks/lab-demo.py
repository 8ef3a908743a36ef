"""Round-trip one sample task per queue through the deployed stack and print where each ran;
check that beat's periodic task ran once per interval.

Copied to a Celery host and run there by lab-demo.yml, as the service user, with the host's
Celery environment: it is what `make lab` shows after the rollout.
"""
import json
import os
import sys
import time

from app import canvas
from app.celery import app
from app.state import redis_client
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

# Beat: the periodic beat-trace task leaves each run's time in Redis. Exactly one beat means
# consecutive runs are one interval apart: never about half (two beats), never about double (none).
interval = float(os.environ["BEAT_TRACE_INTERVAL"])
deadline = time.monotonic() + 4 * interval + 30
while True:
    stamps = [float(x) for x in redis_client().lrange("kit:beat:trace", 0, -1)]
    if len(stamps) >= 4 or time.monotonic() > deadline:
        break
    time.sleep(5)
gaps = [round(b - a, 1) for a, b in zip(stamps[-4:], stamps[-3:])]
beat_ok = len(gaps) == 3 and all(0.5 * interval < g < 1.5 * interval for g in gaps)
print(json.dumps({"tasks": rows, "workers_online": workers,
                  "beat": {"interval_s": interval, "runs_seen": len(stamps), "last_gaps_s": gaps,
                           "once_per_interval": beat_ok},
                  "seconds": round(time.monotonic() - started, 1)}, indent=2, default=str))
if not beat_ok:
    sys.exit(f"beat-trace did not run once per {interval:g} s interval: gaps {gaps}")
