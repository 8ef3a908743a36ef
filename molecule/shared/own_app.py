#!/usr/bin/env python3
"""Bring your own app on the lab: an app that is not the sample, deployed by the kit's roles.

Writes parcel (tests/support/own_app.py: its own package, Celery's default queue `celery`, broker and
backend from its own variables, none of the kit's configuration), builds its wheelhouse for Debian 12
with the documented command (lab/build-wheelhouse.sh, as docs/own-app.md), then runs ansible/site.yml
limited to the broker VM (`--tags workers`) with parcel's inventory variables: the broker host becomes a Celery host
running one worker instance of parcel (`celery-worker@parcel`) on Redis databases of its own (3 and
4), beside the sample fleet and without touching it. Finally parcel's own check sends tasks from the
broker host, the way the units run (celery-kit-exec with common.env), and waits for every result.

Usage (converged lab; Molecule's side_effect runs it with the scenario's inventory):
    python molecule/shared/own_app.py --lab mol-default --inventory INVENTORY [--inventory ...]
Exit 0 when the deploy passed and every task came back. Writes --out (JSON) with the commit.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import REPO, Fleet, commit_ran  # noqa: E402
from release import Lab  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from support.own_app import write_own_app  # noqa: E402

WORK = REPO / ".cache" / "lab" / "own-app"
HOST = "broker"          # Debian 12: the cp311 wheelhouse
INSTANCE = "parcel"
TASKS = 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", default="mol-default")
    ap.add_argument("--inventory", action="append", required=True)
    ap.add_argument("--out", type=Path, default=REPO / "molecule" / "results" / "own-app.json")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    record: dict = {"commit": commit_ran(), "host": HOST}

    app = write_own_app(WORK / "parcel")
    t = time.monotonic()
    build = subprocess.run([str(REPO / "lab" / "build-wheelhouse.sh"), "--project", str(app.root),
                            "--out", str(WORK / "wheelhouses"), "cp311"], capture_output=True, text=True)
    record["wheelhouse_s"] = round(time.monotonic() - t, 1)
    if build.returncode != 0:
        print(build.stderr[-3000:], file=sys.stderr)
        return fail(args.out, record, f"build-wheelhouse.sh exited {build.returncode}")
    spec = build.stdout.strip()
    record["package"] = spec

    # The broker host joins celery_workers for this run only; parcel's variables as an operator would
    # write them (docs/own-app.md), on Redis databases the sample does not use. The lab inventory's
    # URL pieces (scheme, password, host, TLS query) are reused, so LAB_REDIS_TLS=1 works too.
    inventory = WORK / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"celery_workers": {"hosts": {HOST: None}}}))
    variables = WORK / "vars.yml"
    variables.write_text(yaml.safe_dump({
        "celery_common_app": app.app,
        "celery_common_app_queues": [app.queue],
        "celery_common_packages": [spec],
        "celery_common_release": app.version,
        "celery_common_wheelhouse_src": str(WORK / "wheelhouses" / "wheelhouse-{python_tag}.tar"),
        "celery_common_release_checks": [],
        "celery_common_broker_url": "{{ celery_kit_redis_base }}/3{{ celery_kit_redis_query }}",
        "celery_common_result_backend": "{{ celery_kit_redis_base }}/4{{ celery_kit_redis_query }}",
        "celery_common_environment": {app.broker_env: "{{ celery_common_broker_url }}",
                                      app.backend_env: "{{ celery_common_result_backend }}"},
        # parcel sets no visibility timeout: kombu's 3600 s is what its workers use.
        "celery_common_visibility_timeout": 3600,
        "celery_worker_instances": [{"name": INSTANCE, "queues": [app.queue], "concurrency": 2,
                                     "stop_timeout": 60}],
    }))
    lab = Lab(Fleet(args.lab), [*args.inventory, str(inventory)])
    # --tags workers: the Celery base and the workers (no Redis play: the broker's Redis is converged).
    rc, _, took = lab.playbook("site.yml", "--limit", HOST, "--tags", "workers", "-e", f"@{variables}",
                               log_name="own-app-site.log")
    record["site_s"] = round(took, 1)
    if rc != 0:
        return fail(args.out, record, f"site.yml --limit {HOST} --tags workers exited {rc}")

    fleet = lab.f
    active = fleet.run(HOST, f"systemctl is-active celery-worker@{INSTANCE}", check=False).stdout.strip()
    record["unit"] = active
    inner = f"cd /opt/celery/current && exec venv/bin/python -m {app.check} {TASKS}"
    check = fleet.run(HOST, "runuser -u celery -- /opt/celery/bin/celery-kit-exec /etc/celery/common.env -- "
                      f"sh -c {shlex.quote(inner)}", timeout=300, check=False)
    print(check.stdout.strip(), check.stderr.strip()[-2000:], sep="\n", flush=True)
    try:
        result = json.loads(check.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return fail(args.out, record, f"{app.check} printed no result (exit {check.returncode})")
    record.update(sent=result.get("sent"), done=result.get("done"), results_ok=result.get("results_ok"))
    if active != "active" or check.returncode != 0 or result.get("done") != TASKS or not result.get("results_ok"):
        return fail(args.out, record, f"celery-worker@{INSTANCE} {active}; {app.check} exited {check.returncode}")
    record["passed"] = True
    write(args.out, record)
    print(f"own app: {spec} on {HOST}, {result['done']}/{TASKS} tasks came back; site.yml {took:.0f} s")
    return 0


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def fail(path: Path, record: dict, why: str) -> int:
    record.update(passed=False, problem=why)
    write(path, record)
    print(f"own app: FAILED: {why}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
