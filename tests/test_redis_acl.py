"""Redis ACL users as the celery_redis role renders them, on a real redis-server.

The role's templates (celery-auth.conf, celery-kit-redis-users) are rendered with Ansible; the
server includes the rendered users file the way the role's redis.conf does. The celery user
must carry a whole Celery workload (worker, chord, inspect, revoke, RedBeat, the app's lock)
with no command refused, and be refused every admin and destructive command; the default user
must get nothing. A rotation applied at runtime by the role's script must neither restart Redis
nor refuse a single client that uses the new password.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import kombu.exceptions
import pytest
import redis
import yaml
from celery import Celery, chord

from roles_support import ROLES_DIR, ansible_playbook
from support import procs

ROLE = ROLES_DIR / "celery_redis"
OLD = "acl-test-old-celery-password"
NEW = "acl-test-new-celery-password"
ADMIN = "acl-test-admin-password-1234"
ALL_QUEUES = "high,default,long,low"
# The variants of the users file a rotation goes through.
VARIANTS = {
    "old": {"celery_redis_password": OLD},
    "both": {"celery_redis_password": NEW, "celery_redis_previous_password": OLD},
    "new": {"celery_redis_password": NEW},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The users file in each variant, and the role's script, rendered by Ansible from the role."""
    out = tmp_path_factory.mktemp("acl-render")
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the Redis users",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"celery_redis_admin_password": ADMIN},
        "tasks": [
            {"name": "Render the users file", "ansible.builtin.template": {
                "src": str(ROLE / "templates" / "etc" / "redis" / "celery-auth.conf.j2"),
                "dest": f"{out}/{{{{ item.key }}}}.conf", "mode": "0600"},
             "vars": {"celery_redis_password": "{{ item.value.celery_redis_password }}",
                      "celery_redis_previous_password":
                          "{{ item.value.celery_redis_previous_password | default('') }}"},
             "loop": "{{ variants | dict2items }}"},
            {"name": "Render the script", "ansible.builtin.template": {
                "src": str(ROLE / "templates" / "usr" / "local" / "sbin" / "celery-kit-redis-users.j2"),
                "dest": f"{out}/celery-kit-redis-users", "mode": "0700"},
             "vars": {"celery_redis_password": NEW}},
        ],
    }]))
    result = ansible_playbook(str(playbook), "-e", yaml.safe_dump({"variants": VARIANTS}, default_flow_style=True))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return out


class AclRedis:
    """A redis-server on a free loopback port that includes one users file, as redis.conf does."""

    def __init__(self, log_dir: Path, data: Path, rendered: Path, variant: str, appendonly: bool = False):
        self.port = procs.free_port()
        self.rendered = rendered
        self.log_dir = log_dir
        self.auth_conf = data / "celery-auth.conf"
        shutil.copy(rendered / f"{variant}.conf", self.auth_conf)
        self.conf = data / "redis.conf"
        # DEBUG enabled here, so that the ACL is what refuses it (the role leaves Redis' "no").
        aof = "appendonly yes\nappendfsync always" if appendonly else "appendonly no"
        self.conf.write_text(f'port {self.port}\nbind 127.0.0.1\nsave ""\n{aof}\ndir {data}\n'
                             f"enable-debug-command yes\ninclude {self.auth_conf}\n")
        self.start()

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = procs.Proc(f"redis-acl-{self.port}", [server, str(self.conf)], self.log_dir)
        procs.wait_for_port(self.port)
        self.admin = self.client(user="admin", password=ADMIN)

    def restart(self) -> None:
        """SHUTDOWN (the append-only file is complete), then start again from it, as systemd would."""
        try:
            self.admin.shutdown()
        except redis.exceptions.ConnectionError:
            pass
        self.proc.popen.wait(timeout=30)
        self.start()

    def client(self, user: str | None = "celery", password: str | None = NEW, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, username=user, password=password, db=db, socket_timeout=10)

    def urls(self, password: str) -> dict[str, str]:
        base = f"redis://celery:{password}@127.0.0.1:{self.port}"
        return {"CELERY_BROKER_URL": f"{base}/0", "CELERY_RESULT_BACKEND": f"{base}/1", "APP_REDIS_URL": f"{base}/2"}

    def apply(self, variant: str) -> str:
        """What the role's handler does: rewrite the users file, run the role's script."""
        shutil.copy(self.rendered / f"{variant}.conf", self.auth_conf)
        done = subprocess.run(["sh", str(self.rendered / "celery-kit-redis-users")], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "CELERY_REDIS_AUTH_CONF": str(self.auth_conf),
                                               "CELERY_REDIS_PORT": str(self.port),
                                               "CELERY_REDIS_ADMIN_PASSWORD": ADMIN})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def refused_logins(self) -> int:
        """Failed logins, from ACL LOG (Redis 7.0 has no acl_access_denied_* in INFO)."""
        return sum(int(e["count"]) for e in self.admin.acl_log(count=1000) if e["reason"] == "auth")

    def stop(self):
        self.proc.stop()


def _client_app(monkeypatch, urls: dict[str, str]) -> Celery:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):  # Celery reads these before its arguments
        monkeypatch.setenv(name, urls[name])
    return Celery("acl-client", set_as_current=False)


def _round_trip(client: Celery, x: int) -> None:
    assert client.send_task("app.tasks.math.add", (x, 1), queue="default").get(timeout=30) == x + 1
    header = [client.signature("app.tasks.math.add", (i, i), queue="default") for i in range(4)]
    callback = client.signature("app.tasks.math.xsum", queue="default")
    assert chord(header, callback).apply_async().get(timeout=30) == 12


def _wait_for_worker_after_kill(client: Celery, name: str, timeout: float = 30.0) -> None:
    """control.ping does not retry: right after CLIENT KILL, this process' first broadcast may
    still meet a killed connection (a kill artefact, not a refused login; refused_logins counts those)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            procs.wait_for_workers(client, [name], timeout=5)
            return
        except (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _problems(*logs: str) -> list[str]:
    words = ("NOPERM", "WRONGPASS", "NOAUTH", "AuthenticationError", "invalid username-password")
    return [line for log in logs for line in log.splitlines() if any(w in line for w in words)]


@pytest.fixture
def acl_redis(log_dir, tmp_path, rendered):
    started = []

    def start(variant: str, appendonly: bool = False) -> AclRedis:
        server = AclRedis(log_dir, tmp_path, rendered, variant, appendonly)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_the_celery_user_runs_celery_and_nothing_else(acl_redis, log_dir, tmp_path, monkeypatch):
    server = acl_redis("new")
    urls = server.urls(NEW)
    client = _client_app(monkeypatch, urls)
    worker = procs.start_worker(log_dir, f"acl-{server.port}", ALL_QUEUES, env=urls)
    beat = None
    try:
        procs.wait_for_workers(client, [f"acl-{server.port}"])
        _round_trip(client, 41)
        assert client.control.inspect(timeout=2).active() is not None
        client.control.revoke("acl-test-no-such-task")
        # RedBeat as the celery user: takes its lock, sends the trace task, which the worker runs
        # and which writes to the app's Redis.
        beat = procs.Proc(f"acl-beat-{server.port}", procs.celery_argv("beat", "-l", "INFO"), log_dir,
                          env={**urls, "CELERY_BEAT_TRACE_INTERVAL": "2", "CELERY_BEAT_LOCK_TIMEOUT": "15"})
        app_redis = server.client(db=2)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and app_redis.llen("kit:beat:trace") < 2:
            time.sleep(0.5)
        assert app_redis.llen("kit:beat:trace") >= 2, beat.log()[-3000:]
        # The app's single-flight lock and its Lua, as app/producer/service.py uses them.
        from app.producer.service import _DELETE_IF_OURS, _EXTEND_IF_OURS
        lock = redis.lock.Lock(app_redis, "kit:singleflight:acl:lock", timeout=30)
        assert lock.acquire(blocking=False)
        lock.extend(5)
        app_redis.set("kit:singleflight:acl:current", "id-1", ex=60)
        assert app_redis.eval(_EXTEND_IF_OURS, 1, "kit:singleflight:acl:current", "id-1", 60) == 1
        assert app_redis.eval(_DELETE_IF_OURS, 1, "kit:singleflight:acl:current", "id-1") == 1
        lock.release()
        beat.stop()
        _round_trip(client, 1)
        refused = server.admin.acl_log()
        assert not refused, "commands Celery sent were refused:\n" + "\n".join(
            f"{e['reason']} {e['object']} ({e['username']})" for e in refused)
        assert not _problems(worker.log(), beat.log()), _problems(worker.log(), beat.log())
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()

    celery = server.client()
    for command in (["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "SET", "appendonly", "no"], ["CONFIG", "GET", "*"],
                    ["SHUTDOWN", "NOSAVE"], ["MONITOR"], ["REPLICAOF", "127.0.0.1", "1"], ["SLAVEOF", "NO", "ONE"],
                    ["DEBUG", "SLEEP", "0"], ["KEYS", "*"], ["ACL", "SETUSER", "celery", "+@all"],
                    ["SCRIPT", "FLUSH"], ["CLIENT", "KILL", "USER", "admin"], ["SAVE"], ["BGREWRITEAOF"],
                    ["MIGRATE", "127.0.0.1", "1", "x", "0", "1000"], ["FUNCTION", "FLUSH"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            celery.execute_command(*command)
    # Nor through a Lua script: commands run from EVAL are checked too.
    with pytest.raises(redis.exceptions.ResponseError, match="can.t run this command"):
        celery.eval("return redis.call('FLUSHALL')", 0)
    assert server.admin.ping(), "Redis did not survive the refused commands"

    # The default user: no connection without logging in does anything, and nobody logs in as it,
    # neither by name nor with a bare password (what a redis://:PASSWORD@ URL sends).
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(user=None, password=None).ping()
    for user, password in (("default", NEW), ("default", ""), (None, NEW), (None, ADMIN), ("celery", OLD)):
        with pytest.raises(redis.exceptions.AuthenticationError):
            server.client(user=user, password=password).ping()


def test_a_restart_keeps_every_transaction_the_celery_user_wrote(acl_redis):
    """Redis replays its append-only file at start as the default user and re-checks every
    MULTI/EXEC in it against that user's rules (redis/redis#14541). kombu records each message it
    hands out (ZADD unacked_index + HSET unacked), acknowledges and restores in transactions: if
    the replay dropped them, a message a worker held when Redis restarted would be gone for good."""
    server = acl_redis("new", appendonly=True)
    celery = server.client()
    with celery.pipeline(transaction=True) as pipe:
        pipe.zadd("unacked_index", {"tag-1": 1.0}).hset("unacked", "tag-1", "message-1").execute()
    celery.lpush("default", "message-2")
    server.restart()
    assert server.admin.hget("unacked", "tag-1") == b"message-1", "the transaction was dropped at the restart"
    assert server.admin.zscore("unacked_index", "tag-1") == 1.0
    assert server.admin.lrange("default", 0, -1) == [b"message-2"]
    assert "NOPERM" not in server.proc.log()


def test_a_rotation_at_runtime_refuses_no_client_with_the_new_password(acl_redis, log_dir, monkeypatch):
    server = acl_redis("old")
    started_as = server.admin.info("server")["run_id"]
    old_worker = procs.start_worker(log_dir, f"rot-old-{server.port}", ALL_QUEUES, env=server.urls(OLD))
    new_worker = None
    try:
        old_client = _client_app(monkeypatch, server.urls(OLD))
        procs.wait_for_workers(old_client, [f"rot-old-{server.port}"])
        _round_trip(old_client, 1)

        # Step 1: both passwords (the role's handler after site.yml's Redis play).
        assert "applied 3 users" in server.apply("both")
        # A worker still on the old password reconnects: still accepted.
        server.admin.client_kill_filter(user="celery")
        _round_trip(old_client, 2)

        # The rollout: a worker with the new password consumes before the old one stops.
        new_client = _client_app(monkeypatch, server.urls(NEW))
        new_worker = procs.start_worker(log_dir, f"rot-new-{server.port}", ALL_QUEUES, env=server.urls(NEW))
        procs.wait_for_workers(new_client, [f"rot-new-{server.port}"])
        old_worker.stop()
        _round_trip(new_client, 3)
        assert server.refused_logins() == 0

        # Step 2: the old password goes (playbooks/rotate-redis-password.yml), still at runtime.
        server.apply("new")
        _round_trip(new_client, 4)
        # Every celery connection logs in again, now with only the new password accepted.
        server.admin.client_kill_filter(user="celery")
        _round_trip(new_client, 5)
        # The worker's broadcast consumer is back too.
        _wait_for_worker_after_kill(new_client, f"rot-new-{server.port}")
        assert server.refused_logins() == 0, "a client with the new password was refused"
        assert not _problems(new_worker.log()), _problems(new_worker.log())

        # The old password is refused now, and Redis never restarted.
        with pytest.raises(redis.exceptions.AuthenticationError):
            server.client(password=OLD).ping()
        # (redis-py retries a refused login a few times: several entries.)
        assert server.refused_logins() >= 1
        assert server.admin.info("server")["run_id"] == started_as, "Redis restarted during the rotation"
    finally:
        old_worker.stop()
        if new_worker is not None:
            new_worker.stop()


def test_the_script_applies_users_with_the_previous_admin_password(acl_redis, rendered):
    """An admin password rotation: the running Redis knows only the old admin password."""
    server = acl_redis("new")
    done = subprocess.run(["sh", str(rendered / "celery-kit-redis-users")], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "CELERY_REDIS_AUTH_CONF": str(server.auth_conf),
                                           "CELERY_REDIS_PORT": str(server.port),
                                           "CELERY_REDIS_ADMIN_PASSWORD": "acl-test-wrong-admin-password",
                                           "CELERY_REDIS_ADMIN_PREVIOUS_PASSWORD": ADMIN})
    assert done.returncode == 0, done.stdout + done.stderr
    server.admin.acl_setuser("leftover", enabled=True, passwords=["+leftover-password-123"])
    done = subprocess.run(["sh", str(rendered / "celery-kit-redis-users")], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "CELERY_REDIS_AUTH_CONF": str(server.auth_conf),
                                           "CELERY_REDIS_PORT": str(server.port),
                                           "CELERY_REDIS_ADMIN_PASSWORD": ADMIN})
    assert done.returncode == 0 and "deleted leftover" in done.stdout, done.stdout + done.stderr
    assert sorted(server.admin.acl_users()) == ["admin", "celery", "default"]
    done = subprocess.run(["sh", str(rendered / "celery-kit-redis-users")], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "CELERY_REDIS_AUTH_CONF": str(server.auth_conf),
                                           "CELERY_REDIS_PORT": str(server.port),
                                           "CELERY_REDIS_ADMIN_PASSWORD": "acl-test-wrong-admin-password"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert ADMIN not in done.stdout + done.stderr


def test_the_users_file_holds_hashes_not_passwords(rendered):
    def hashed(password: str) -> str:
        return "#" + hashlib.sha256(password.encode()).hexdigest()

    for path in [*(rendered / f"{v}.conf" for v in VARIANTS), rendered / "celery-kit-redis-users"]:
        text = path.read_text()
        for secret in (OLD, NEW, ADMIN):
            assert secret not in text, f"{path.name} holds a password in clear"
    users = {line.split()[1]: line for line in (rendered / "both.conf").read_text().splitlines()
             if line.startswith("user ")}
    assert users["default"] == "user default reset off ~* &* +@all"
    assert hashed(NEW) in users["celery"] and hashed(OLD) in users["celery"]
    assert hashed(NEW) not in (rendered / "old.conf").read_text()
    assert hashed(OLD) not in (rendered / "new.conf").read_text()
    assert hashed(ADMIN) in users["admin"] and "+@all" in users["admin"] and "+@all" not in users["celery"]


def _rotate(tmp_path: Path, previous: str, env_password: str, *args: str):
    """playbooks/rotate-redis-password.yml against this machine, the Celery host's common.env in tmp_path."""
    (tmp_path / "common.env").write_text(
        f"CELERY_BROKER_URL='redis://celery:{env_password}@10.99.0.10:6379/0'\n"
        f"CELERY_RESULT_BACKEND='redis://celery:{env_password}@10.99.0.10:6379/1'\n")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}
    inventory = {"all": {"vars": local, "children": {
        "redis": {"hosts": {"broker": {"celery_redis_password": NEW, "celery_redis_admin_password": ADMIN,
                                       "celery_redis_previous_password": previous}}},
        "celery_workers": {"hosts": {"node1": {"celery_common_config_dir": str(tmp_path),
                                               "celery_common_user": "nobody"}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return ansible_playbook("-i", str(tmp_path / "hosts.yml"), "playbooks/rotate-redis-password.yml", *args,
                            timeout=240)


def test_the_rotation_playbook_refuses_while_a_previous_password_is_listed(tmp_path):
    done = _rotate(tmp_path, OLD, NEW)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "celery_redis_previous_password" in output, output[-3000:]
    assert "PLAY [Drop the previous password" not in output and OLD not in output and NEW not in output


def test_the_rotation_playbook_refuses_while_a_celery_host_has_the_old_password(tmp_path):
    done = _rotate(tmp_path, "", OLD, "--limit", "node1")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "CELERY_BROKER_URL does not log in as 'celery' with celery_redis_password" in output, output[-3000:]
    assert OLD not in output and NEW not in output
    done = _rotate(tmp_path, "", NEW, "--limit", "node1")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
