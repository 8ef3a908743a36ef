"""Ansible callback: the wall time of every task on every host, appended to a JSON-lines file.

Enabled for the lab's Molecule runs (.config/molecule/config.yml: ANSIBLE_CALLBACK_PLUGINS and
ANSIBLE_CALLBACKS_ENABLED); the file is $LAB_TASK_TIMINGS (default .cache/lab/task-timings.jsonl).
One line per play run: {"playbook", "started", "tasks": [{"task", "role", "host", "status", "seconds"}]}.
`python3 lab/ansible_plugins/callback/task_timings.py [FILE]` prints the costliest tasks of the last run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict

try:
    from ansible.plugins.callback import CallbackBase
except ImportError:  # the summary below runs without Ansible
    CallbackBase = object

DOCUMENTATION = """
name: task_timings
type: aggregate
short_description: record each task's wall time per host (JSON lines)
description: Appends one JSON line per playbook run to $LAB_TASK_TIMINGS.
requirements: []
"""

DEFAULT_FILE = ".cache/lab/task-timings.jsonl"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._playbook = ""
        self._started = time.time()
        self._task_start: dict[str, float] = {}
        self._rows: list[dict] = []

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")
        self._started = time.time()

    def v2_runner_on_start(self, host, task):
        self._task_start[f"{host.get_name()}|{task._uuid}"] = time.time()

    def _done(self, result, status):
        host = result._host.get_name()
        task = result._task
        start = self._task_start.pop(f"{host}|{task._uuid}", None)
        if start is None:
            return
        role = getattr(getattr(task, "_role", None), "_role_name", "") or ""
        self._rows.append({"task": task.get_name(), "role": role, "host": host, "status": status,
                           "seconds": round(time.time() - start, 3)})

    def v2_runner_on_ok(self, result):
        self._done(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("LAB_TASK_TIMINGS", DEFAULT_FILE)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        line = {"playbook": self._playbook, "started": round(self._started, 1),
                "seconds": round(time.time() - self._started, 1), "tasks": self._rows}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def summary(path: str, top: int = 40) -> str:
    with open(path, encoding="utf-8") as src:
        runs = [json.loads(line) for line in src if line.strip()]
    lines = []
    for run in runs[-4:]:
        per_task: dict[tuple, list] = defaultdict(list)
        for row in run["tasks"]:
            per_task[(row["role"], row["task"])].append(row["seconds"])
        lines.append(f"== {run['playbook']} {run['seconds']} s, {len(run['tasks'])} task results, "
                     f"{len(per_task)} tasks; max over hosts per task summed: "
                     f"{sum(max(v) for v in per_task.values()):.0f} s")
        for (role, name), secs in sorted(per_task.items(), key=lambda kv: -max(kv[1]))[:top]:
            lines.append(f"{max(secs):7.1f} {len(secs):2d}x {role}: {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FILE))
