#!/usr/bin/env python3
"""Rolling releases under load on a converged lab, counted by the ledger of faults.py.

While a load generator on ``control`` publishes instant tasks (``default``/``high``) and 20-60 s
tasks (``long``), and a sampler on the controller (through an SSH tunnel to Redis) asks every
second which queues have a consumer (``inspect active_queues``), this runs, with the kit's own playbooks:

1. release: ``site.yml`` with a new release label (same wheels, so a new release directory);
2. rollback: ``playbooks/rollback.yml`` (back to the first release);
3. broken: a wheelhouse whose app raises at import. The play must fail before any host moves:
   no host runs it, nothing restarted (main PIDs unchanged);
4. unready: a wheelhouse whose app imports but whose worker exits at start. The first batch's
   host must go back on its own (current and processes), the play must stop before the next
   batch, and name the instance.

Afterwards the ledgers give lost and duplicate tasks, the sampler the longest time any declared
queue had no consumer, the ledger's wait times the p95 during the releases over steady state.
Writes molecule/results/release.json (and release.md). Exit 1 if a task was lost, a queue went
without a consumer, or a bad release was not stopped.

Usage (converged lab; Molecule's side_effect runs it with the scenario's inventory):
    python molecule/shared/release.py --lab mol-default --inventory INVENTORY [--inventory ...]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labtest  # noqa: E402
from faults import EXEC, GENERATOR, KILL_LOAD, LOAD_MARK, PYTHON, REPO, WORK, Fleet, commit_ran, ledgers  # noqa: E402

CELERY_HOSTS = ("worker1", "worker2", "control")
LOG_DIR = REPO / ".cache" / "lab" / "release"
SAMPLE_MARK = "kit-release-sampler"

# Every second: which declared queues have a consumer that answers (one JSON line per sample).
# It runs on the controller, through an SSH tunnel to the broker: on the one-vCPU control VM
# under emulation it competed with the services being released, and its clock was not the
# controller's. Each sample takes the replies that arrive within SAMPLE_TIMEOUT_S.
SAMPLER = r"""
import json, sys, time
from app.celery import app
queues, out = sys.argv[2].split(","), open(sys.argv[3], "a")
period, phase, timeout = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
t = (time.time() // period + 1) * period + phase
while True:
    time.sleep(max(0.0, t - time.time()))
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        replies = {}
    consumed = sorted({q["name"] for qs in replies.values() for q in (qs or [])})
    out.write(json.dumps({"t": t, "consumed": consumed, "nodes": sorted(replies)}) + "\n"); out.flush()
    t += period
"""
# A node on a busy VM under emulation may take seconds to answer: each sample waits this long for
# replies, and as many samplers as it takes, each starting a second after the previous one, give
# one sample a second.
SAMPLE_TIMEOUT_S = 2.5
SAMPLERS = 3


# LAB_REDIS_TLS: Redis speaks TLS only, verified against the lab's CA (lab/redis-tls-certs.sh).
LAB_CA = REPO / "build" / "redis-tls" / "ca.crt"
TLS_CONTEXT = ssl.create_default_context(cafile=str(LAB_CA)) if labtest.REDIS_TLS else None


class BrokerTunnel:
    """127.0.0.1:PORT on the controller forwarded over SSH to Redis on the broker VM (the lab's
    private segment has no address on the controller)."""

    def __init__(self, fleet: Fleet, host: str = "broker", remote: str = "127.0.0.1:6379"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        i = fleet.hosts[host]
        self.proc = subprocess.Popen(
            ["ssh", "-N", "-L", f"127.0.0.1:{self.port}:{remote}", "-i", i["identity_file"], "-p", str(i["port"]),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5",
             "-o", "ServerAliveCountMax=6", f"{i['user']}@{i['address']}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                    c = TLS_CONTEXT.wrap_socket(raw, server_hostname="127.0.0.1") if TLS_CONTEXT else raw
                    c.sendall(b"PING\r\n")
                    if c.recv(64):   # Redis answers (-NOAUTH or +PONG) once the forward is up
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no SSH tunnel to Redis on {host}: {self.proc.stderr.read()[-500:]}")
            time.sleep(1)

    def url(self, db: int) -> str:
        lab_vars = yaml.safe_load((REPO / "ansible" / "inventories" / "lab" / "group_vars" / "all.yml").read_text())
        password = urllib.parse.quote(lab_vars["celery_redis_password"], safe="")
        if TLS_CONTEXT:   # the lab's certificate names 127.0.0.1 too (lab/redis-tls-certs.sh)
            return (f"rediss://celery:{password}@127.0.0.1:{self.port}/{db}"
                    f"?ssl_cert_reqs=required&ssl_ca_certs={LAB_CA}")
        return f"redis://celery:{password}@127.0.0.1:{self.port}/{db}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


BROKEN_IMPORT = 'raise RuntimeError("release check: this build of the app is broken at import")\n'
UNREADY_WORKER = '''
from celery.signals import worker_init as _kit_worker_init


@_kit_worker_init.connect
def _kit_refuse_to_start(**_kwargs):  # imports fine, but no worker of this build ever starts
    raise SystemExit("release check: this build of the app cannot start a worker")
'''


def patched_wheelhouse(src: Path, dest: Path, module: str, append: str, prepend: bool) -> Path:
    """A copy of the wheelhouse whose sample-app wheel has ``append`` added to ``module``."""
    work = dest / "wheelhouse"
    work.mkdir(parents=True)
    with tarfile.open(src) as tar:
        for member in tar.getmembers():
            if member.isfile():
                (work / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    wheel = next(work.glob("celery_kit_sample-*.whl"))
    entries = {}
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            entries[info.filename] = z.read(info.filename)
    text = entries[module].decode()
    entries[module] = ((append + text) if prepend else (text + append)).encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(entries[module]).digest()).rstrip(b"=").decode()
    record = next(name for name in entries if name.endswith(".dist-info/RECORD"))
    entries[record] = "\n".join(
        f"{module},sha256={digest},{len(entries[module])}" if line.startswith(module + ",") else line
        for line in entries[record].decode().splitlines()).encode() + b"\n"
    wheel.unlink()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    archive = dest / "wheelhouse.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(work, arcname="wheelhouse")
    return archive


def patched_wheelhouses(src: str, dest: Path, module: str, append: str, prepend: bool) -> str:
    """``patched_wheelhouse`` of each Python's wheelhouse when ``src`` names them with {python_tag}
    (build/wheelhouse-{python_tag}.tar: one per release of a mixed fleet); the value to pass as
    celery_common_wheelhouse_src."""
    if "{python_tag}" not in src:
        return str(patched_wheelhouse(Path(src), dest, module, append, prepend))
    template = Path(src)
    prefix, suffix = template.name.split("{python_tag}")
    found = sorted(template.parent.glob(f"{prefix}cp3*{suffix}"))
    if not found:
        raise SystemExit(f"release: no wheelhouse matches {src} (make wheelhouse)")
    for path in found:
        tag = path.name[len(prefix):len(path.name) - len(suffix)]
        archive = patched_wheelhouse(path, dest / tag, module, append, prepend)
        archive.rename(dest / f"{prefix}{tag}{suffix}")
    return str(dest / template.name)


class Lab:
    def __init__(self, fleet: Fleet, inventories: list[str]):
        self.f = fleet
        self.inventories = inventories
        self.tails: list[dict] = []

    def playbook(self, playbook: str, *extra: str, quiet: bool = False, log_name: str = "",
                 secrets: dict | None = None) -> tuple[int, str, float]:
        """Run a playbook of the kit against the lab: (exit code, whole output, seconds). The output
        goes to a log file under .cache/lab/release/ (``log_name``, or one numbered by step); its
        tail is printed and recorded unless ``quiet`` (a run whose output is searched for secrets
        prints none of it). ``secrets``: extra vars passed in a file only root can read, for the
        run only, so no value is on a command line."""
        if secrets:
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            path = LOG_DIR / f"secrets-{os.getpid()}.yml"
            path.unlink(missing_ok=True)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as sink:
                sink.write(yaml.safe_dump(secrets))
            try:
                return self.playbook(playbook, *extra, "-e", f"@{path}", quiet=quiet, log_name=log_name)
            finally:
                path.unlink(missing_ok=True)
        # The ansible-playbook of the Python running this (the repo's .venv), also when it is not on PATH.
        beside = Path(sys.executable).with_name("ansible-playbook")
        argv = [str(beside) if beside.exists() else (shutil.which("ansible-playbook") or "ansible-playbook")]
        for inv in self.inventories:
            argv += ["-i", inv]
        argv += [str(REPO / "ansible" / playbook), *extra]
        # The control VM (one vCPU) answers SSH slowly while the load generator
        # starts under TCG: a generous connect timeout and retries, or the play fails "unreachable".
        plugins = REPO / "lab" / "ansible_plugins"
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_PIPELINING="true",
                   ANSIBLE_STRATEGY_PLUGINS=str(plugins / "strategy"), ANSIBLE_STRATEGY="mitogen_linear",
                   ANSIBLE_CALLBACK_PLUGINS=str(plugins / "callback"), ANSIBLE_CALLBACKS_ENABLED="task_timings",
                   LAB_TASK_TIMINGS=str(LOG_DIR / "release-task-timings.jsonl"),
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_TIMEOUT="120",
                   ANSIBLE_SSH_RETRIES="5")
        # The whole output goes to a log file as it comes (a long step can be followed with tail -f);
        # only its tail is printed and recorded.
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / (log_name or f"release-{len(self.tails) + 1}-{Path(playbook).stem}.log")
        print(f"--- {playbook} {' '.join(extra)}: output in {log}", flush=True)
        t = time.monotonic()
        with log.open("w") as sink:
            proc = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, text=True, env=env)
        took = time.monotonic() - t
        out = log.read_text(errors="replace")
        print(f"--- {playbook} {' '.join(extra)}: exit {proc.returncode} in {took:.0f} s", flush=True)
        if quiet:
            return proc.returncode, out, took
        print("\n".join(out.splitlines()[-25:]), flush=True)
        self.tails.append({"playbook": f"{playbook} {' '.join(extra)}", "rc": proc.returncode,
                           "tail": out.splitlines()[-15:]})
        return proc.returncode, out, took

    def current(self) -> dict[str, str]:
        return {h: self.f.run(h, "readlink /opt/celery/current").stdout.strip() for h in CELERY_HOSTS}

    def main_pids(self) -> dict[str, str]:
        cmd = ("for u in $(systemctl list-units --plain --no-legend --state=active 'celery-*.service'"
               " | awk '{print $1}'); do echo $u $(systemctl show -p MainPID --value $u); done")
        return {h: self.f.run(h, cmd).stdout.strip() for h in CELERY_HOSTS}


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20)[18]


def consumer_gaps(samples: list[dict], queues: list[str]) -> tuple[float, dict[str, float]]:
    """Longest time each queue was seen without a consumer: from the first sample that missed it to
    the next sample that saw it again (a sample where no node answered at all is missing data, not
    a gap; a queue still missing at the last sample counts until then)."""
    worst: dict[str, float] = {}
    for q in queues:
        missing_since, gap = None, 0.0
        for s in samples:
            if not s["nodes"]:
                continue
            if q in s["consumed"]:
                if missing_since is not None:
                    gap = max(gap, s["t"] - missing_since)
                missing_since = None
            elif missing_since is None:
                missing_since = s["t"]
        if missing_since is not None and samples:
            gap = max(gap, samples[-1]["t"] - missing_since)
        worst[q] = round(gap, 1)
    return max(worst.values(), default=0.0), worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--inventory", action="append", default=[], help="inventory for ansible-playbook (repeatable)")
    ap.add_argument("--out", type=Path, default=REPO / "molecule" / "results" / "release.json")
    ap.add_argument("--rate", type=float, default=4.0, help="instant tasks per second")
    # The lab's one `long` consumer (concurrency 1) runs one 40 s task on average at a time: one
    # every 60 s keeps that queue from growing a backlog the drill would then wait out.
    ap.add_argument("--long-every", type=int, default=240, help="one 20-60 s long task every N tasks")
    ap.add_argument("--steady", type=float, default=60.0, help="seconds of steady state before the release")
    ap.add_argument("--wheelhouse", default=str(REPO / "build" / "wheelhouse-{python_tag}.tar"),
                    help="the wheelhouse to patch; {python_tag} stands for each Python's (cp311, cp313)")
    ap.add_argument("--queues", default="default,high,long,low")
    ap.add_argument("--bad-releases", default="broken,unready",
                    help="which bad releases to try after the release and the rollback: broken, unready "
                         "(comma-separated; empty for none)")
    args = ap.parse_args()
    bad = [b for b in args.bad_releases.split(",") if b]
    unknown = sorted(set(bad) - {"broken", "unready"})
    if unknown:
        ap.error(f"--bad-releases: unknown {', '.join(unknown)} (known: broken, unready)")

    f = Fleet(args.lab)
    lab = Lab(f, args.inventory)
    queues = args.queues.split(",")
    commit = commit_ran()
    tag = f"release-{time.strftime('%H%M%S')}"
    f.run("control", f"{KILL_LOAD}; pkill -f '[{SAMPLE_MARK[0]}]{SAMPLE_MARK[1:]}';"
          f" rm -rf {WORK}; mkdir -p {WORK}")
    first = lab.current()
    tunnel = BrokerTunnel(f)
    samples_file = LOG_DIR / "samples.jsonl"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    samples_file.unlink(missing_ok=True)
    samplers = [subprocess.Popen([sys.executable, "-c", SAMPLER, SAMPLE_MARK, args.queues, str(samples_file),
                                  str(SAMPLERS), str(n), str(SAMPLE_TIMEOUT_S)],
                                 env=dict(os.environ, CELERY_BROKER_URL=tunnel.url(0),
                                          CELERY_RESULT_BACKEND=tunnel.url(1)),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
                for n in range(SAMPLERS)]
    # Enough tasks for the whole run; the generator is stopped when the last step is done.
    gen = f.start("control", f"{EXEC} {PYTHON} - {LOAD_MARK} {tag} 1000000 {args.rate} 1 {args.long_every}",
                  stdin=GENERATOR)
    t_start = time.time()
    time.sleep(args.steady)
    f.wait_ssh("control", timeout=600)
    steps: dict[str, dict] = {}

    def save_partial() -> None:
        """After every step: an interrupted drill still leaves what it ran."""
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"commit": commit, "partial": True, "steps": steps}, indent=2) + "\n")

    t_release = time.time()
    rc, out, took = lab.playbook("site.yml", "-e", "celery_common_release=2.0.0")
    steps["release"] = {"rc": rc, "wall_s": round(took, 1), "current": lab.current()}
    save_partial()
    rc, out, took = lab.playbook("playbooks/rollback.yml")
    steps["rollback"] = {"rc": rc, "wall_s": round(took, 1), "current": lab.current()}
    save_partial()
    t_released = time.time()

    with tempfile.TemporaryDirectory() as tmp:
        broken = patched_wheelhouses(args.wheelhouse, Path(tmp) / "broken", "app/__init__.py", BROKEN_IMPORT, True)
        unready = patched_wheelhouses(args.wheelhouse, Path(tmp) / "unready", "app/celery.py", UNREADY_WORKER,
                                      False)
        if "broken" in bad:
            before_pids, before = lab.main_pids(), lab.current()
            rc, out, took = lab.playbook("site.yml", "-e", "celery_common_release=3.0.0",
                                         "-e", f"celery_common_wheelhouse_src={broken}")
            after_pids, after = lab.main_pids(), lab.current()
            steps["broken"] = {"rc": rc, "wall_s": round(took, 1), "current_unchanged": after == before,
                               "nothing_restarted": after_pids == before_pids,
                               "error_names_import": "broken at import" in out,
                               "error": next((line.strip() for line in out.splitlines()
                                              if "failed its check" in line), "")}
            save_partial()
        if "unready" in bad:
            before = lab.current()
            rc, out, took = lab.playbook("site.yml", "-e", "celery_common_release=4.0.0",
                                         "-e", f"celery_common_wheelhouse_src={unready}")
            after = lab.current()
            steps["unready"] = {"rc": rc, "wall_s": round(took, 1), "current_unchanged": after == before,
                                "error": next((line.strip() for line in out.splitlines()
                                               if "the next batches were not started" in line), "")}
            steps["unready"]["names_instance"] = "fast" in steps["unready"]["error"]
    t_end = time.time()
    time.sleep(5)
    f.run("control", KILL_LOAD, check=False)
    gen.communicate(timeout=60)
    for sampler in samplers:
        sampler.terminate()
        sampler.communicate(timeout=60)
    tunnel.close()

    published = {json.loads(line)["id"]: json.loads(line) for line in
                 f.run("control", f"cat {WORK}/published-{tag}.jsonl").stdout.splitlines() if line.strip()}
    # Tasks published in the last seconds before the generator stopped still complete now: wait
    # until every one is in a ledger or nothing new arrives for 90 s (long tasks take 60 s).
    last, last_change = -1, time.monotonic()
    while True:
        done = [r for r in ledgers(f) if r["id"].startswith(f"{tag}-")]
        counts = Counter(r["id"] for r in done)
        if len(done) != last:
            last, last_change = len(done), time.monotonic()
        if set(published) <= set(counts) or time.monotonic() - last_change > 90:
            break
        time.sleep(5)
    lost = sorted(set(published) - set(counts))
    duplicates = {i: n for i, n in counts.items() if n > 1}
    first_done = {}
    for r in done:
        first_done[r["id"]] = min(first_done.get(r["id"], r["done"]), r["done"])
    def waits(t0: float, t1: float) -> list[float]:
        return [first_done[i] - p["t"] for i, p in published.items()
                if p["queue"] != "long" and t0 <= p["t"] < t1 and i in first_done]
    steady, during = waits(t_start + 10, t_release), waits(t_release, t_released)
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines() if line.strip()),
                     key=lambda sample: sample["t"])
    window = [s for s in samples if t_release - 5 <= s["t"] <= t_end]
    max_gap, gaps = consumer_gaps(window, queues)
    # None: not tried in this run (--bad-releases).
    broken_blocked = (None if "broken" not in steps else
                      steps["broken"]["rc"] != 0 and steps["broken"]["current_unchanged"]
                      and steps["broken"]["nothing_restarted"] and steps["broken"]["error_names_import"])
    unready_rolled_back = (None if "unready" not in steps else
                           steps["unready"]["rc"] != 0 and steps["unready"]["current_unchanged"]
                           and steps["unready"]["names_instance"])
    record = {
        "commit": commit,
        "lost": len(lost), "lost_ids": lost[:20],
        "duplicates": len(duplicates), "duplicate_ids": dict(list(duplicates.items())[:20]),
        "published": len(published), "completed": len(counts),
        "max_consumer_gap_s": max_gap, "consumer_gap_s_by_queue": gaps,
        "samples": len(window), "samples_without_any_reply": sum(1 for s in window if not s["nodes"]),
        "p95_wait_steady_s": round(p95(steady), 3), "p95_wait_release_s": round(p95(during), 3),
        "p95_ratio": round(p95(during) / p95(steady), 2) if steady and p95(steady) > 0 else None,
        "broken_release_blocked": broken_blocked,
        "unready_release_rolled_back": unready_rolled_back,
        "release_wall_s": steps["release"]["wall_s"], "rollback_wall_s": steps["rollback"]["wall_s"],
        "first_release": first, "steps": steps,
        "load": {"rate": args.rate, "long_every": args.long_every},
        "playbook_tails": [t for t in lab.tails if t["rc"] != 0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(record))
    print(json.dumps({k: record[k] for k in ("lost", "duplicates", "max_consumer_gap_s", "p95_ratio",
                                             "broken_release_blocked", "unready_release_rolled_back",
                                             "release_wall_s", "rollback_wall_s")}), flush=True)
    ok = (not lost and max_gap == 0 and broken_blocked is not False and unready_rolled_back is not False
          and steps["release"]["rc"] == 0 and steps["rollback"]["rc"] == 0
          and steps["rollback"]["current"] == first and steps["release"]["current"] != first)
    if not ok:
        print("FAILED: see molecule/results/release.json", file=sys.stderr)
    return 0 if ok else 1


def tried(outcome: bool | None) -> str:
    return "not tried in this run" if outcome is None else str(outcome)


def markdown(r: dict) -> str:
    return "\n".join([
        "<!-- generated by molecule/shared/release.py from release.json; do not edit -->",
        f"Measured at commit `{r['commit']}` (`python molecule/shared/release.py`, four-VM lab, "
        f"{r['load']['rate']:g} instant tasks/s plus one 20-60 s `long` task every {r['load']['long_every']}).", "",
        "| release v1 → v2, rollback v2 → v1 | value |", "|---|---|",
        f"| tasks published / completed | {r['published']} / {r['completed']} |",
        f"| lost | {r['lost']} |",
        f"| duplicates | {r['duplicates']} |",
        f"| longest time a declared queue had no consumer (s) | {r['max_consumer_gap_s']} |",
        f"| instant-task p95 wait, during releases ÷ steady | {r['p95_ratio']} "
        f"({r['p95_wait_release_s']} s / {r['p95_wait_steady_s']} s) |",
        f"| release wall time (s) | {r['release_wall_s']} |",
        f"| rollback wall time (s) | {r['rollback_wall_s']} |",
        f"| release that raises at import: blocked before any host moved | {tried(r['broken_release_blocked'])} |",
        f"| release whose worker cannot start: first host rolled back, later batches untouched | "
        f"{tried(r['unready_release_rolled_back'])} |",
    ]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
