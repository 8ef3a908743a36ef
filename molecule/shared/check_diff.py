#!/usr/bin/env python3
"""`site.yml --check --diff` on a converged lab, with every secret changed, prints none of them.

A rotation as an operator would preview it: new Redis passwords (the celery and the admin user,
with the lab's as the previous ones) and a new Flower password, all with characters that need
escaping in a URL. The run must complete on every host, report that something would change on a
Celery host (the environment files), and its whole output, stdout and stderr, must hold no secret:
not the lab's passwords, not the new ones, not their percent-encoded forms, not the SHA-256
hashes the Redis users file stores. --check changes nothing on the hosts.

Usage (converged lab; Molecule's side_effect runs it with the scenario's inventory):
    python molecule/shared/check_diff.py --lab mol-default --inventory INVENTORY [--inventory ...]
Exit 0 when the run passed and no secret was printed; 1 otherwise, naming which secret (by its
variable, never its value) appeared and on which output line numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
import urllib.parse
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import REPO, Fleet  # noqa: E402
from release import Lab  # noqa: E402

LAB_VARS = REPO / "ansible" / "inventories" / "lab" / "group_vars" / "all.yml"
NEW = {
    "celery_redis_password": "Rotated/redis#pw@%?:1-kit",
    "celery_redis_admin_password": "Rotated/admin#pw@%?:2-kit",
    "celery_flower_basic_auth_password": "Rotated/flower#pw@%?:3-kit",
    "celery_redis_exporter_password": "Rotated/metrics#pw@%?:4-kit",
}


def forms(value: str) -> set[str]:
    """Every shape a password could take in the output: as is, percent-encoded (both the way
    Python and the inventory's urlencode filter quote it), and the SHA-256 Redis' ACL stores."""
    return {value, urllib.parse.quote(value, safe=""), urllib.parse.quote(value),
            hashlib.sha256(value.encode()).hexdigest()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", default="mol-default")
    ap.add_argument("--inventory", action="append", required=True)
    args = ap.parse_args()

    old = {name: value for name, value in yaml.safe_load(LAB_VARS.read_text()).items() if name in NEW}
    extra = {**NEW, "celery_redis_previous_password": old["celery_redis_password"],
             "celery_redis_admin_previous_password": old["celery_redis_admin_password"]}
    secrets = {f"{name} (new)": forms(value) for name, value in NEW.items()}
    secrets |= {f"{name} (lab's)": forms(value) for name, value in old.items()}

    lab = Lab(Fleet(args.lab), args.inventory)
    rc, out, took = lab.playbook("site.yml", "--check", "--diff", secrets=extra, quiet=True,
                                 log_name="check-diff-site.log")

    lines = out.splitlines()
    leaks = {name: [n for n, line in enumerate(lines, 1) if any(v in line for v in values)]
             for name, values in secrets.items()}
    leaks = {name: found for name, found in leaks.items() if found}
    recap = dict(re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M))
    changed_celery = sum(int(recap.get(h, 0)) for h in ("worker1", "worker2", "control"))
    problems = []
    if rc != 0:
        problems.append(f"site.yml --check --diff exited {rc}")
    if changed_celery == 0:
        problems.append(f"no Celery host reported a change for the new secrets (recap: {recap})")
    for name, found in leaks.items():
        problems.append(f"{name} printed on output line(s) {found[:10]}")
    print(f"check-diff with changed secrets: exit {rc} in {took:.0f} s, {len(lines)} lines of output, "
          f"{sum(len(v) for v in secrets.values())} secret forms searched, "
          f"{len(leaks)} found; changed on the Celery hosts: {changed_celery}")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
