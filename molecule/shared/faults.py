#!/usr/bin/env python3
"""Faults under load on a converged lab, counted by a ledger that lives outside what breaks.

One load generator on the ``control`` VM publishes ``app.tasks.probe.record`` tasks at a steady
rate (instant ones on ``default``/``high``) from before the first fault to after the last, and
records each task id only after ``apply_async`` returned (``published-*.jsonl`` on control). Each
task appends its id to an fsynced ledger on its worker's disk when it completes
(``app.tasks.probe``). The faults run one after the other, each in a window of the load: it is
injected while a 30 s ``long`` task it asked the generator for runs, and its window closes once
``--tasks`` tasks were published in it and a tenth of that since the fault healed. Every task counts for
the window it was published in. After the last window the ledgers are collected and compared:

- lost: published, never completed (a task moved to the dead-letter list on purpose is counted
  as dead-lettered, not lost);
- duplicates: completed more than once (late acks make some expected; each is listed with its
  completions so it can be explained);
- late: messages nobody would acknowledge any more (reserved, or finished, while the broker
  connection was down; held by a worker that died), which Redis hands out again only after the
  visibility timeout (4 h in the lab). Those exact messages are aged in Redis' ``unacked_index``
  instead of waiting, the workers' own restore requeues them, and they must then complete;
- recovery_s: the longest stretch without any completion between the fault and the end of the
  window (how long the fleet stopped processing); the late messages, aged and restored after the
  window, do not count.

Usage (the lab must be converged with ansible/site.yml):
    python molecule/shared/faults.py --lab mol-default --out molecule/results/faults.json [--only NAME,...] \
        [--inventory INVENTORY]   # the faults that run the kit's playbooks (redis_password_rotation) need it
Exit status 1 if any fault lost a task it must not lose.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labtest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAB_VARS = REPO / "ansible" / "inventories" / "lab" / "group_vars" / "all.yml"
EXEC = "/opt/celery/bin/celery-kit-exec /etc/celery/common.env --"
PYTHON = "/opt/celery/current/venv/bin/python"
LEDGER_GLOB = "/var/lib/celery/worker-*/ledger.jsonl"
WORK = "/var/tmp/kit-faults"
LOAD_MARK = "kit-fault-load"   # in the load generator's argv, so a leftover one can be found
KILL_LOAD = f"pkill -f '[{LOAD_MARK[0]}]{LOAD_MARK[1:]}'"   # the pattern does not match the pkill itself
# The Celery main process of an instance: the child of the unit's main process (celery-kit-exec).
CELERY_MAIN = "$(pgrep -P $(systemctl show -p MainPID --value celery-worker@{instance}) -f celery)"

GENERATOR = r'''
import json, os, queue, random, sys, threading, time
from app.celery import app
name, count, rate, n_long = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
long_every = int(sys.argv[6]) if len(sys.argv) > 6 else 0   # then one 20-60 s long task every N
# Started with `python -c`, the driver's requests arrive on stdin, one per line (with `python -`,
# stdin held this script and is at its end):
#   "long SECONDS SUFFIX": publish a long task now, id NAME-SUFFIX;   "stop": end the load here.
# Progress goes to stdout: "published N" every 20 tasks.
requests = queue.Queue()
threading.Thread(target=lambda: [requests.put(line.split()) for line in sys.stdin], daemon=True).start()
rng = random.Random(name)
out = open(f"{WORK}/published-{name}.jsonl", "a")
recorded = threading.Lock()
published = 0

def publish(task_id, queue, kwargs):
    while True:   # a failed publish is retried with the same id: a message published twice
        try:      # then shows up as a duplicate, never as a loss
            app.send_task("app.tasks.probe.record", kwargs=kwargs, queue=queue, task_id=task_id,
                          retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                                    "interval_step": 0.5, "interval_max": 1})
            break
        except Exception as exc:
            print(f"publish {task_id}: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(0.5)
    global published
    with recorded:   # recorded only after apply_async returned, in the order they returned
        out.write(json.dumps({"id": task_id, "queue": queue, "t": time.time()}) + "\n")
        out.flush()   # in the file before the next publish: a generator killed at the end loses no id
        published += 1
        if published % 50 == 0:
            os.fsync(out.fileno())
        if published % 20 == 0:
            print(f"published {published}", flush=True)

# A publish is a few round trips to the broker, each a wait under emulation: a few threads take
# the paced tasks in turn, so one slow reply does not hold the rate back.
PUBLISHERS = 3
todo = queue.Queue(maxsize=PUBLISHERS)

def publisher():
    while (job := todo.get()) is not None:
        publish(*job)

threads = [threading.Thread(target=publisher) for _ in range(PUBLISHERS)]
for thread in threads:
    thread.start()
t0, paced, i = time.time(), 0, 0
stop = False
while i < count + n_long and not stop:
    while not requests.empty():
        w = requests.get_nowait()
        if w and w[0] == "long":
            todo.put((f"{name}-{w[2]}", "long", {"seconds": float(w[1])}))
        stop = stop or w == ["stop"]
    if stop:
        break
    if i < n_long:
        queue_name, kwargs = "long", {"seconds": rng.uniform(20, 40)}
    elif long_every and i % long_every == 0:
        queue_name, kwargs = "long", {"seconds": rng.uniform(20, 60)}
    else:
        queue_name, kwargs = ("high" if i % 2 else "default"), {"seconds": 0}
    todo.put((f"{name}-{i:05d}", queue_name, kwargs))
    i += 1
    if i > n_long:
        paced += 1
        behind = time.time() - (t0 + paced / rate)
        if behind > 2:   # after a stall (the broker away) go on at the rate, not in a burst
            t0 += behind
        time.sleep(max(0.0, t0 + paced / rate - time.time()))
for thread in threads:
    todo.put(None)
for thread in threads:
    thread.join()
out.flush(); os.fsync(out.fileno())
print(json.dumps({"published": published, "seconds": time.time() - t0}))
'''.replace("{WORK}", WORK)


FAST_FORWARD_LUA = """
local wanted = {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local now = tonumber(redis.call('TIME')[1])
local all = redis.call('HGETALL', 'unacked')
local moved = {}
for i = 1, #all, 2 do
  local ok, m = pcall(cjson.decode, all[i + 1])
  if ok and type(m) == 'table' and type(m[1]) == 'table' and type(m[1]['headers']) == 'table'
     and wanted[m[1]['headers']['id']] then
    redis.call('ZADD', 'unacked_index', now - 10 * 24 * 3600, all[i])
    moved[#moved + 1] = m[1]['headers']['id']
  end
end
return moved
"""


class Fleet:
    """The lab's VMs over SSH (labctl's instance config: forwarded port, key, user)."""

    def __init__(self, lab: str):
        out = subprocess.run([sys.executable, str(REPO / "lab" / "labctl"), "instance-config", "--name", lab],
                             check=True, capture_output=True, text=True).stdout
        self.hosts = {i["instance"]: i for i in json.loads(out)}

    def _argv(self, host: str, command: str) -> list[str]:
        i = self.hosts[host]
        return ["ssh", "-i", i["identity_file"], "-p", str(i["port"]), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                f"{i['user']}@{i['address']}", command]

    def run(self, host: str, command: str, stdin: str | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._argv(host, f"sudo sh -c {shlex.quote(command)}"), input=stdin, text=True,
                              capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{host}: {command!r} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
        return proc

    def start(self, host: str, command: str, stdin: str | None = None, keep_stdin: bool = False) -> subprocess.Popen:
        """``command`` running on ``host``; ``stdin`` written to it, then its stdin closed unless
        ``keep_stdin`` (to write more while it runs)."""
        proc = subprocess.Popen(self._argv(host, f"sudo sh -c {shlex.quote(command)}"), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        if stdin is not None:
            proc.stdin.write(stdin)
        if not keep_stdin:
            proc.stdin.close()
            proc.stdin = None   # communicate() must not touch it again
        return proc

    def wait_ssh(self, host: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.run(host, "systemctl is-system-running --wait >/dev/null 2>&1; true", timeout=60,
                            check=False).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(3)
        raise TimeoutError(f"{host} did not come back within {timeout:.0f}s")

    def reboot(self, host: str, how: str) -> None:
        """``clean``: systemctl reboot; ``hard``: the kernel reboots at once, no sync (a power cut)."""
        command = ("systemctl reboot" if how == "clean"
                   else "echo 1 > /proc/sys/kernel/sysrq; echo b > /proc/sysrq-trigger")
        try:
            self.run(host, f"(sleep 1; {command}) >/dev/null 2>&1 &", timeout=20, check=False)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(10)

    def redis_cli(self, args: str) -> str:
        """redis-cli on the broker as Redis' admin user; the password (the lab's, from its group_vars)
        travels on stdin, never argv."""
        lab_vars = yaml.safe_load(LAB_VARS.read_text())
        command = (f"read -r REDISCLI_AUTH && export REDISCLI_AUTH && {labtest.REDIS_CLI} --no-auth-warning"
                   f" --user admin {args}")
        return self.run("broker", command, stdin=lab_vars["celery_redis_admin_password"] + "\n").stdout.strip()

    def fast_forward_unacked(self, ids: list[str]) -> list[str]:
        """Age the unacknowledged messages of ``ids`` past the visibility timeout; returns the ids
        of the messages it aged.

        A worker that dies without acknowledging leaves its messages in Redis' ``unacked`` hash;
        kombu hands them out again once they are older than the visibility timeout (4 h in the
        lab). Rather than wait, the score of exactly these messages in ``unacked_index`` is moved
        back; a live worker's own periodic restore then requeues them, as it would after 4 h."""
        if not ids:
            return []
        return self.redis_cli("-n 0 EVAL " + shlex.quote(FAST_FORWARD_LUA) + " 0 "
                              + " ".join(shlex.quote(i) for i in ids)).split()

    def delivered_unacked(self, task_id: str) -> bool:
        """The message of ``task_id`` is delivered to a worker and not yet acknowledged: with the
        lab's long instance (concurrency 1, prefetch 1, late acks) that is, it runs."""
        return f'"id": "{task_id}"' in self.redis_cli("-n 0 HVALS unacked")



# ------------------------------------------------------------------------------------------------
# Faults: each injects, heals, and returns what it wants recorded besides the counts.
# ------------------------------------------------------------------------------------------------

def redis_restart(f: Fleet) -> dict:
    f.run("broker", "systemctl restart redis-server")
    return {}


def redis_kill9(f: Fleet, fsync: str) -> dict:
    f.redis_cli(f"CONFIG SET appendfsync {fsync}")
    f.run("broker", "systemctl kill --signal=SIGKILL redis-server")   # Restart=always brings it back
    time.sleep(2)
    deadline = time.monotonic() + 120
    while f.run("broker", "systemctl is-active redis-server", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not come back after SIGKILL")
        time.sleep(1)
    return {"appendfsync": fsync}


def broker_reboot(f: Fleet) -> dict:
    f.reboot("broker", "clean")
    f.wait_ssh("broker")
    return {}


def worker_oom(f: Fleet) -> dict:
    """A task that allocates more than its instance's MemoryMax: the kernel kills the pool process."""
    before = f.run("worker1", "systemctl show -p NRestarts --value celery-worker@fast").stdout.strip()
    probe = f"oom-probe-{time.time():.0f}"
    f.run("control", f"{EXEC} {PYTHON} -c "
          + shlex.quote("from app.celery import app; app.send_task('app.tasks.probe.record', "
                        f"kwargs={{'allocate_mib': 600}}, queue='default', task_id='{probe}')"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and probe not in f.redis_cli("-n 1 LRANGE celery-kit:dead-letter 0 -1"):
        time.sleep(3)
    dead = probe in f.redis_cli("-n 1 LRANGE celery-kit:dead-letter 0 -1")
    after = f.run("worker1", "systemctl show -p NRestarts --value celery-worker@fast").stdout.strip()
    active = f.run("worker1", "systemctl is-active celery-worker@fast", check=False).stdout.strip()
    kills = f.run("worker1", "journalctl -k --no-pager | grep -c 'Memory cgroup out of memory' || true").stdout.strip()
    return {"oom_task_dead_lettered": dead, "instance_restarts": int(after) - int(before),
            "instance_active": active == "active", "oom_kills_in_kernel_log": int(kills or 0)}


def network_partition(f: Fleet, seconds: int = 30) -> dict:
    broker = private_address("broker")
    since = f.run("worker1", "date +%s").stdout.strip()
    f.run("worker1", "nft add table inet kitfault;"
          " nft add chain inet kitfault out '{ type filter hook output priority 0; }';"
          " nft add chain inet kitfault in '{ type filter hook input priority 0; }';"
          f" nft add rule inet kitfault out ip daddr {broker} drop;"
          f" nft add rule inet kitfault in ip saddr {broker} drop")
    time.sleep(seconds)
    f.run("worker1", "nft delete table inet kitfault")
    time.sleep(20)  # kombu's watchdog runs when the event loop resumes; a late reply lands within seconds

    def count(text: str) -> int:
        out = f.run("worker1", f"journalctl --since @{since} -u 'celery-worker@*' --no-pager"
                    f" | grep -c {shlex.quote(text)} || true").stdout.strip()
        return int(out or 0)

    return {"partition_s": seconds, "stale_connections_dropped": count("dropping stale connection"),
            "late_replies_kept": count("arrived late, on a connection given up as stale")}


def worker_kill9(f: Fleet) -> dict:
    """SIGKILL of the long instance's Celery main process (its pool child dies with it). Its
    messages are left unacknowledged: the run's drain ages them (see ``late``)."""
    f.run("worker2", f"kill -KILL {CELERY_MAIN.format(instance='long')}")
    time.sleep(8)   # systemd restarts the instance (RestartSec=5)
    return {}


def worker_cold_stop(f: Fleet) -> dict:
    """What celery-kit-exec does when the stop timeout expires: SIGQUIT, a cold shutdown."""
    f.run("worker2", f"kill -QUIT {CELERY_MAIN.format(instance='long')}")
    return {}


def worker_hard_reset(f: Fleet) -> dict:
    f.reboot("worker2", "hard")
    f.wait_ssh("worker2")
    return {}


def instances_of(host: str) -> list[str]:
    """The worker instances the lab inventory declares for ``host``."""
    host_vars = yaml.safe_load((LAB_VARS.parents[1] / "host_vars" / f"{host}.yml").read_text())
    return [i["name"] for i in host_vars.get("celery_worker_instances", [])]


def inactive_instances(f: Fleet, host: str, wait_s: float = 120) -> list[str]:
    """The host's declared instances that are not active ``wait_s`` seconds from now at the latest."""
    deadline = time.monotonic() + wait_s
    while True:
        inactive = [n for n in instances_of(host)
                    if f.run(host, f"systemctl is-active --quiet celery-worker@{n}", check=False).returncode != 0]
        if not inactive or time.monotonic() > deadline:
            return inactive
        time.sleep(5)


def workers_restart(f: Fleet) -> dict:
    """The long instance's running task ends the warm way: its journal says so since the restart."""
    since = f.run("worker2", "date +%s").stdout.strip()
    t = time.monotonic()
    f.run("worker2", "systemctl restart celery-workers.target", timeout=900)
    took = round(time.monotonic() - t, 1)
    log = f.run("worker2", f"journalctl --no-pager -u celery-worker@long --since @{since}").stdout
    return {"restart_s": took, "warm_shutdown": "Warm shutdown" in log,
            "inactive_instances": inactive_instances(f, "worker2")}


def worker_reboot(f: Fleet) -> dict:
    """The VM really rebooted and every instance it declares runs again."""
    boot_id = f.run("worker2", "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    f.reboot("worker2", "clean")
    f.wait_ssh("worker2")
    return {"rebooted": f.run("worker2", "cat /proc/sys/kernel/random/boot_id").stdout.strip() != boot_id,
            "inactive_instances": inactive_instances(f, "worker2")}


# Inventories of the lab (--inventory): the faults that run the kit's own playbooks need them.
INVENTORIES: list[str] = []
ROTATION_PASSWORD = "Rotated/celery#pw@%?:lab-only"


def redis_password_rotation(f: Fleet) -> dict:
    """The celery user's Redis password rotated under load as docs/operations.md describes, and
    back: site.yml with the new password and the old one as previous (Redis accepts both, every
    worker is handed over to a process with the new URLs), then rotate-redis-password.yml drops the
    old one; the same again to return to the lab's password. Counts every refused login: Redis'
    ACL LOG (reason auth) and the Celery hosts' journals."""
    from release import Lab  # release.py imports this module

    if not INVENTORIES:
        raise RuntimeError("redis_password_rotation runs the kit's playbooks: pass --inventory")
    lab_password = yaml.safe_load(LAB_VARS.read_text())["celery_redis_password"]
    lab = Lab(f, INVENTORIES)
    f.redis_cli("ACL LOG RESET")
    since = f.run("broker", "date +%s").stdout.strip()
    steps = []
    for new, old in ((ROTATION_PASSWORD, lab_password), (lab_password, ROTATION_PASSWORD)):
        for playbook, values in (("site.yml", {"celery_redis_password": new, "celery_redis_previous_password": old}),
                                 ("playbooks/rotate-redis-password.yml", {"celery_redis_password": new})):
            rc, _, took = lab.playbook(playbook, secrets=values, quiet=True,
                                       log_name=f"rotation-{len(steps) + 1}-{Path(playbook).stem}.log")
            steps.append({"playbook": playbook, "rc": rc, "wall_s": round(took, 1)})
            if rc != 0:
                break
        if steps[-1]["rc"] != 0:
            break
    acl_log = f.redis_cli("ACL LOG 128").splitlines()
    refused = sum(1 for a, b in zip(acl_log, acl_log[1:]) if a == "reason" and b == "auth")
    # The journal (systemd units) and supervisor's program logs; not sudo's record of this very
    # command, whose pattern would match itself.
    journal = 0
    for host in ("worker1", "worker2", "control"):
        out = f.run(host, f"{{ journalctl --since @{since} --no-pager -o cat | grep -v 'COMMAND='; "
                          "cat /var/log/celery/*.log 2>/dev/null; }"
                          " | grep -cE 'WRONGPASS|invalid username-password|NOAUTH' || true").stdout.strip()
        journal += int(out or 0)
    return {"rotation_steps": steps, "rotation_ok": all(s["rc"] == 0 for s in steps) and len(steps) == 4,
            "refused_logins": refused, "auth_errors_in_journals": journal}


def beat_takeover(f: Fleet, interval: float = 30.0, lock_timeout: float = 30.0) -> dict:
    """A second beat started by hand on worker1 sends nothing while control's beat lives, and takes
    over when control loses power. Ledger: the periodic task's own run times (Redis list
    kit:beat:trace, app database); Redis is not what breaks here."""
    def runs() -> list[float]:
        return [float(x) for x in f.redis_cli("-n 2 LRANGE kit:beat:trace 0 -1").split()]

    start = time.time()
    f.run("worker1", "systemctl stop kit-second-beat 2>/dev/null; systemctl reset-failed kit-second-beat 2>/dev/null;"
          " systemd-run --unit=kit-second-beat --uid=celery --gid=celery --working-directory=/tmp"
          " -p EnvironmentFile=/etc/celery/common.env /opt/celery/current/venv/bin/celery -A app beat -l INFO")
    time.sleep(interval * 3)
    second_log = f.run("worker1", "journalctl -u kit-second-beat --no-pager").stdout
    sent_while_first_lived = "Acquired lock" in second_log
    f.reboot("control", "hard")          # power cut: the lock is not released
    cut_at = time.time() - 10
    deadline = time.monotonic() + lock_timeout + 60
    while time.monotonic() < deadline and "Acquired lock" not in f.run(
            "worker1", "journalctl -u kit-second-beat --no-pager").stdout:
        time.sleep(2)
    took_over_s = time.time() - cut_at
    time.sleep(interval * 2)
    f.wait_ssh("control")
    f.run("worker1", "systemctl stop kit-second-beat")   # releases the lock: control's beat resumes
    time.sleep(interval * 2 + 10)
    end = time.time()
    times = [t for t in runs() if start <= t <= end]
    gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
    duplicates = sum(1 for g in gaps if g < interval * 0.5)
    # Runs missed: intervals without a run, less those the lock timeout allows once at the takeover.
    missed = sum(max(0, round(g / interval) - 1) for g in gaps)
    allowed = -(-(lock_timeout + 5) // interval)
    return {"fault": "beat_takeover", "what": FAULTS["beat_takeover"][1], "published": len(times) + missed,
            "completed": len(times), "lost": int(max(0, missed - allowed)),
            "duplicates": duplicates, "recovery_s": max(gaps, default=0.0), "second_beat_sent_while_first_lived":
            sent_while_first_lived, "takeover_s": round(took_over_s, 1), "gaps_s": gaps, "may_lose": None}


# name: (inject, what is done, what happens, what the operator sees)
FAULTS = {
    "redis_restart": (redis_restart, "systemctl restart redis-server (graceful)",
                      "AOF written on shutdown; workers reconnect; the running long task keeps running and "
                      "stores its result once Redis is back",
                      "worker journals: 'Connection to broker lost', then 'Connected to redis'"),
    "redis_kill9_always": (lambda f: redis_kill9(f, "always"), "kill -9 redis-server, appendfsync always",
                           "systemd restarts Redis from its AOF, which holds every acknowledged write",
                           "redis-server.service: 'Main process exited, code=killed', restarted"),
    "redis_kill9_everysec": (lambda f: redis_kill9(f, "everysec"), "kill -9 redis-server, appendfsync everysec",
                             "as above, but up to the last second of writes may be missing from the AOF",
                             "as above; tasks published in the last second may be gone"),
    "broker_reboot": (broker_reboot, "clean reboot of the broker VM",
                      "Redis stops cleanly; publishers retry, workers reconnect when it is back",
                      "publish retries in the producer; worker reconnect messages"),
    "worker_oom": (worker_oom, "pool process killed by the OOM killer (instance MemoryMax)",
                   "the kernel kills the pool process; the instance keeps running (OOMPolicy=continue); the "
                   "task is requeued and, after CELERY_TASK_MAX_REDELIVERIES runs, dead-lettered",
                   "kernel log 'Memory cgroup out of memory'; worker log 'redelivered N times', Redis list "
                   "celery-kit:dead-letter"),
    "network_partition": (network_partition, "30 s partition worker1 <-> broker (nftables drop)",
                          "worker1's connections stall and resume (or reconnect); other workers go on; a "
                          "message Redis popped into the cut is kept when its reply arrives late and requeued",
                          "Flower shows worker1 offline for the partition; worker1 log 'Redis BRPOP got no "
                          "reply', and 'arrived late' for a message in flight"),
    "worker_kill9": (worker_kill9, "kill -9 of the long instance's main process while a long task runs",
                     "the running and reserved messages stay unacknowledged in Redis; systemd restarts the "
                     "instance; the messages are delivered again after the visibility timeout (4 h in the "
                     "lab; the run ages exactly those messages instead of waiting)",
                     "celery-worker@long: 'Main process exited, code=killed', restarted; the task runs again "
                     "after the visibility timeout"),
    "worker_cold_stop": (worker_cold_stop, "cold shutdown of the long instance (its stop timeout expired)",
                         "the running long task is cancelled and its message requeued at once; the instance "
                         "restarts and runs it again",
                         "worker log 'Cold shutdown', 'Restoring 1 unacknowledged message(s)'"),
    "worker_hard_reset": (worker_hard_reset, "hard reset of worker2 (power cut, no sync)",
                          "as kill -9 for every instance of the host; the fsynced ledger survives; the "
                          "instances start at boot",
                          "Flower shows the host's workers offline until it is back"),
    "workers_restart": (workers_restart, "systemctl restart celery-workers.target, long task running",
                        "warm shutdown: the running long task finishes, prefetched messages go back, "
                        "the instances start again",
                        "the restart returns when the running task has finished"),
    "worker_reboot": (worker_reboot, "clean reboot of worker2 while a long task runs",
                      "the reboot waits for the graceful stop (shutdown targets' JobTimeoutSec covers the "
                      "longest stop timeout); instances start at boot",
                      "the VM reboots after the long task finished"),
    "redis_password_rotation": (redis_password_rotation,
                                "Redis password rotated and back under load (site.yml, rotate-redis-password.yml)",
                                "Redis accepts old and new while every worker is handed over to the new URLs; "
                                "the old one is dropped at runtime once no Celery process uses it; no restart",
                                "no refused login in Redis' ACL LOG or any Celery journal"),
    "beat_takeover": (beat_takeover, "second beat started by hand on worker1; control powered off",
                      "the second beat waits for the lock in Redis and sends nothing; after the power cut the "
                      "lock expires (CELERY_BEAT_LOCK_TIMEOUT) and it takes over from the shared schedule state",
                      "second beat's log: nothing until 'beat: Acquired lock'; one run per interval throughout"),
}
# The default run (make test's side effect): one of each kind the fleet meets in routine operation.
# Every redis.conf change restarts Redis; a release or a config change restarts a host's instances,
# whose running long task must finish the warm way; a kernel update reboots a worker host, whose
# every instance must run again. Each window holds at least 1,000 tasks, which take the lab under
# emulation minutes to publish and run: `--only all` runs every fault, several times as long (each
# fault's wall_s is in faults.json); the password rotation alone runs four playbooks.
DEFAULT_FAULTS = ("redis_restart", "workers_restart", "worker_reboot")
# Losses the kit documents rather than prevents.
MAY_LOSE = {"redis_kill9_everysec": "Redis documents up to one second of writes lost with appendfsync everysec"}


def commit_ran() -> str:
    """The commit this runs on; ``-dirty`` when a file other than what the runs themselves write differs
    (a drill that ran before in the same run has rewritten molecule/results/; the verify before the side
    effect has saved Flower's screenshots in docs/images/)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                              "--", ".", ":!molecule/results", ":!docs/images"],
                             capture_output=True, text=True).stdout.strip()
    return f"{head}-dirty" if changed else head


SCENARIO = REPO / "molecule" / "default" / "molecule.yml"   # the lab's topology


def topology():
    """The machines the default scenario boots, as lab/labctl reads them (lab/labvm/topology.py)."""
    sys.path.insert(0, str(REPO / "lab"))
    try:
        from labvm import topology as lab_topology
    finally:
        sys.path.pop(0)
    return lab_topology.load(SCENARIO)


def worker_hosts() -> list[str]:
    """The hosts the default scenario boots in the celery_workers group."""
    return [m.name for m in topology().machines if "celery_workers" in m.groups]


def private_address(host: str) -> str:
    """The address ``host`` has on the lab's private network."""
    return topology().by_name(host).address


def ledgers(f: Fleet) -> list[dict]:
    records = []
    for host in worker_hosts():
        out = f.run(host, f"cat {LEDGER_GLOB} 2>/dev/null || true").stdout
        records += [json.loads(line) for line in out.splitlines() if line.strip()]
    return records


# The long task each fault waits for before it hits (seconds): long enough to still run when the
# fault lands, short enough that the next fault's does not queue behind it.
LONG_SECONDS = 30.0


class Load:
    """The steady load of a fault run: the generator on control, driven over its own SSH session
    (requests on its stdin, progress on its stdout), so that following it costs control no logins."""

    def __init__(self, f: Fleet, tag: str, rate: float):
        self.f, self.tag, self.log = f, tag, f"{WORK}/generator-{tag}.log"   # stderr to a file: never a full pipe
        self.progress: list[tuple[float, int]] = [(time.time(), 0)]   # (seen at, on this host's clock; count)
        self.proc = f.start("control", f"mkdir -p {WORK}; {EXEC} {PYTHON} -c {shlex.quote(GENERATOR)} {LOAD_MARK}"
                                       f" {tag} 1000000000 {rate} 0 2>>{self.log}", keep_stdin=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("published "):
                self.progress.append((time.time(), int(line.split()[1])))

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.f.run("control", f"tail -c 2000 {self.log}", check=False).stdout
            raise RuntimeError(f"the load generator exited {self.proc.returncode}: {tail}")

    def request(self, words: str) -> None:
        self.proc.stdin.write(words + "\n")
        self.proc.stdin.flush()

    def count_at(self, t: float) -> int:
        """How many tasks the generator had reported published at ``t`` (a multiple of 20)."""
        return max((n for seen, n in self.progress if seen <= t), default=0)

    def published_since(self, t: float) -> int:
        return self.progress[-1][1] - self.count_at(t)

    def stop(self) -> None:
        """Ends the load; the published file on control is complete afterwards."""
        try:
            self.request("stop")
            self.proc.stdin.close()
            self.proc.wait(timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            self.f.run("control", KILL_LOAD, check=False)
            self.proc.wait(timeout=60)
        self.reader.join(timeout=30)

    def published(self) -> list[dict]:
        return [json.loads(line) for line in
                self.f.run("control", f"cat {WORK}/published-{self.tag}.jsonl").stdout.splitlines() if line.strip()]


def drain(f: Fleet, want: set[str], prefix: str, limit: float, idle: float | None = 45) -> list[dict]:
    """The ledgers' completions of this run once every id in ``want`` is done, nothing new came for
    ``idle`` seconds (None: no such cut-off), or after ``limit`` seconds."""
    deadline, last, last_change = time.monotonic() + limit, -1, time.monotonic()
    while True:
        done = [r for r in ledgers(f) if r["id"].startswith(prefix)]
        if len(done) != last:
            last, last_change = len(done), time.monotonic()
        quiet = idle is not None and time.monotonic() - last_change > idle
        if want <= {r["id"] for r in done} or time.monotonic() > deadline or quiet:
            return done
        time.sleep(5)


def fault_windows(f: Fleet, names: list[str], load: Load, count: int) -> list[dict]:
    """Inject the faults of ``names`` one after the other into the running ``load``; returns their
    windows (see ``run_schedule``)."""
    windows: list[dict] = []
    start = 0.0
    for n, name in enumerate(names):
        inject, what = FAULTS[name][:2]
        started = time.monotonic()
        long_id = f"long-{n:02d}"
        load.request(f"long {LONG_SECONDS:g} {long_id}")
        # Under TCG the generator's start-up alone can take a minute; after a worker host's
        # restart the long instance takes a while to consume again.
        deadline = time.monotonic() + 300
        while not f.delivered_unacked(f"{load.tag}-{long_id}"):
            load.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the long task {load.tag}-{long_id} did not start within 300 s")
            time.sleep(2)
        time.sleep(3)   # some instant tasks in flight as well
        fault_at = time.time()
        detail = inject(f)
        healed_at = time.time()
        # The window holds `count` tasks and goes on for a tenth of that after the fault has healed.
        while load.published_since(start) < count or load.published_since(healed_at) < count // 10:
            load.check()
            time.sleep(2)
        end = time.time()
        # The window's tasks by their place in the published file (which is in publishing order).
        windows.append({"fault": name, "what": what, "start": start, "fault_at": fault_at,
                        "healed_at": healed_at, "end": end, "detail": detail,
                        "first": load.count_at(start), "last": load.count_at(end),
                        "wall_s": round(time.monotonic() - started, 1)})
        print(json.dumps({"fault": name, "fault_s": round(healed_at - fault_at, 1),
                          "window_s": round(end - fault_at, 1)}), flush=True)
        start = end
    windows[-1]["last"] = None   # what is published until the generator stops is the last one's
    return windows


def run_schedule(f: Fleet, names: list[str], count: int, rate: float, drain_s: float, run_id: str) -> list[dict]:
    """Every fault of ``names``, one after the other, under one steady load.

    The load generator runs from before the first fault to after the last. Each fault gets a window
    of the load: it starts where the previous one ended, holds the fault (injected once a ``long``
    task it asked for runs) and closes once ``count`` tasks were published in it and a tenth of that
    since the fault healed. Every published task belongs to exactly one window, by its place in
    the publishing order, and is counted for that fault. The ledgers are collected once, after the last window; the
    late messages are aged then (see the module's docstring). ``beat_takeover``, which needs no load
    and powers off control (the generator's host), runs after all that."""
    tag = f"load-{run_id}"
    prefix = f"{tag}-"
    ledger_faults = [n for n in names if n != "beat_takeover"]
    windows: list[dict] = []
    published: list[dict] = []
    done: list[dict] = []
    if ledger_faults:
        load = Load(f, tag, rate)
        try:
            windows = fault_windows(f, ledger_faults, load, count)
        finally:   # stopped on any way out: no load left running on control
            load.stop()
        published = load.published()

    aged: list[str] = []
    completion_times: list[float] = []
    if published:
        expected = {p["id"] for p in published}
        done = drain(f, expected, prefix, drain_s)
        # Measured before the late messages below are aged and restored: the wait for kombu's restore
        # sweep is not the fleet standing still.
        first_done: dict[str, float] = {}
        for r in done:
            first_done[r["id"]] = min(first_done.get(r["id"], r["done"]), r["done"])
        completion_times = sorted(first_done.values())
        # Messages nobody will acknowledge any more (reserved or finished while the broker connection
        # was down, or held by a worker that died) wait in Redis' unacked set for the visibility
        # timeout: late, not lost. Age exactly those and let the workers' own restore requeue them.
        missing = expected - set(first_done)
        if missing:   # after 45 s without a completion no long task of the load is still running
            aged = f.fast_forward_unacked(sorted(missing))
            if aged:
                # Each worker looks for expired unacked messages about every 100 s (kombu's
                # unacked_restore_interval 10 s x unacked_restore_throttle 10), under a mutex: no idle
                # cut-off here, only the limit.
                done = drain(f, set(first_done) | set(aged), prefix, 360, idle=None)

    results = []
    counts = Counter(r["id"] for r in done)
    redelivered = {r["id"] for r in done if r.get("redelivered")}
    for w in windows:
        ids = {p["id"] for p in published[w["first"]:w["last"]]}
        # Up to when the window closed (the last one's too: the drain after the load is no stall).
        times = [w["fault_at"]] + [t for t in completion_times if w["fault_at"] <= t <= w["end"]] + [w["end"]]
        lost = sorted(i for i in ids if i not in counts)
        duplicates = {i: counts[i] for i in sorted(ids) if counts[i] > 1}
        results.append({
            "fault": w["fault"], "what": w["what"], "published": len(ids),
            "completed": sum(1 for i in ids if i in counts),
            "lost": len(lost), "lost_ids": lost[:20],
            "delayed_by_visibility_timeout": len(ids & set(aged)),
            "duplicates": len(duplicates), "duplicate_ids": dict(list(duplicates.items())[:20]),
            "redelivered_completions": len(ids & redelivered),
            "recovery_s": round(max(b - a for a, b in zip(times, times[1:])), 1),
            "fault_s": round(w["healed_at"] - w["fault_at"], 1),
            "may_lose": MAY_LOSE.get(w["fault"]), "wall_s": w["wall_s"], **w["detail"],
        })
    if "beat_takeover" in names:   # last: it powers off control, which holds a worker's ledger too
        started = time.monotonic()
        results.append(beat_takeover(f) | {"wall_s": round(time.monotonic() - started, 1)})
    return results


def merged(out: Path, results: list[dict]) -> list[dict]:
    """This run's faults, then the latest record of every other fault from ``out`` (a run of some
    faults, such as make test's, does not erase what a run of the others measured)."""
    ran = {r["fault"] for r in results}
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return list(results)
    kept = [{"commit": old.get("commit"), "tasks_per_fault": old.get("tasks_per_fault"), "rate": old.get("rate"), **e}
            for e in old.get("faults", []) if e.get("fault") not in ran and e.get("fault") in FAULTS]
    return list(results) + kept


def markdown(record: dict) -> str:
    """The operator's table, generated from the results record."""
    lines = ["<!-- generated by molecule/shared/faults.py from faults.json; do not edit -->",
             "Measured by `python molecule/shared/faults.py`: one steady load of instant tasks at R/s under all the "
             "faults of a run, one after the other. Each fault hits while a 30 s `long` task runs; its window "
             "starts where the previous one ended, holds at least N tasks and goes on for N/10 after the fault "
             "healed; a task counts for the window it was published in. Each row names the commit and the load "
             "it ran with.",
             "",
             "| fault | what happens | what the operator sees | published | completed | lost "
             "| late (visibility timeout) | duplicates | recovery (s) | commit, N at R/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["faults"]:
        _, what, happens, sees = FAULTS[r["fault"]]
        lines.append(f"| {what} | {happens} | {sees} | {r['published']} | {r['completed']} | {r['lost']} "
                     f"| {r.get('delayed_by_visibility_timeout', 0)} | {r['duplicates']} | {r['recovery_s']} "
                     f"| `{r.get('commit')}`, {r.get('tasks_per_fault')} at {r.get('rate') or 0:g}/s |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", required=True, help="lab name (make lab: lab; Molecule: mol-<scenario>)")
    ap.add_argument("--out", type=Path, default=REPO / "molecule" / "results" / "faults.json")
    ap.add_argument("--only", default=",".join(DEFAULT_FAULTS),
                    help="comma-separated fault names, or 'all' (default: %(default)s)")
    ap.add_argument("--tasks", type=int, default=1000, help="tasks published in each fault's window")
    ap.add_argument("--rate", type=float, default=15.0, help="instant tasks per second")
    ap.add_argument("--drain", type=float, default=300.0, help="seconds to wait for completions")
    ap.add_argument("--inventory", action="append", default=[],
                    help="the lab's inventory (Molecule's); needed by the faults that run playbooks")
    args = ap.parse_args()
    if args.tasks < 1 or args.rate <= 0 or args.drain <= 0:
        ap.error(f"--tasks must be at least 1 (got {args.tasks}), --rate and --drain above 0 "
                 f"(got {args.rate:g}, {args.drain:g})")
    INVENTORIES[:] = args.inventory
    if args.only == "all":
        names = list(FAULTS)
    else:
        names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        ap.error(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    f = Fleet(args.lab)
    f.run("control", f"{KILL_LOAD}; rm -rf {WORK}; mkdir -p {WORK}")
    commit = commit_ran()
    started = time.monotonic()
    results = run_schedule(f, names, args.tasks, args.rate, args.drain, time.strftime("%H%M%S"))
    for entry in results:
        entry.update(commit=commit, tasks_per_fault=args.tasks, rate=args.rate, redis_tls=labtest.REDIS_TLS)
        print(json.dumps({k: entry.get(k) for k in ("fault", "published", "completed", "lost",
                                                    "delayed_by_visibility_timeout", "duplicates",
                                                    "recovery_s", "wall_s")}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"commit": commit, "tasks_per_fault": args.tasks, "rate": args.rate,
              "schedule": "one load, faults one after the other", "faults_run": names,
              "wall_s": round(time.monotonic() - started, 1), "faults": merged(args.out, results)}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(record))
    bad = [r["fault"] for r in results if r["lost"] and not r["may_lose"]]
    bad += [r["fault"] for r in results if r["fault"] == "beat_takeover"
            and (r["duplicates"] or r["second_beat_sent_while_first_lived"])]
    bad += [r["fault"] for r in results if r["fault"] == "redis_password_rotation"
            and not (r["rotation_ok"] and r["refused_logins"] == 0 and r["auth_errors_in_journals"] == 0)]
    bad += [r["fault"] for r in results if r["fault"] == "workers_restart"
            and not (r["warm_shutdown"] and not r["inactive_instances"])]
    bad += [r["fault"] for r in results if r["fault"] == "worker_reboot"
            and not (r["rebooted"] and not r["inactive_instances"])]
    bad += [r["fault"] for r in results if r["fault"] == "worker_oom"
            and not (r["oom_task_dead_lettered"] and r["instance_active"] and r["instance_restarts"] == 0)]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
