"""Redis over TLS as the celery_redis role renders it (celery_redis_tls: true), on a real redis-server.

The certificates come from the lab's own generator (lab/redis-tls-certs.sh); redis.conf, the users
file and the runtime users script are rendered by Ansible from the role, with only the file
locations moved into a temporary directory. Plaintext and a client that trusts another CA must be
refused; a worker, the kit's own app as a producer, the result backend, the app's Redis, RedBeat,
Flower's broker view and the release probe must all work over rediss:// URLs that verify the server.
"""
from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import yaml
from test_roles_preflight import VALID, _run, _started_a_change_play

from roles_support import REPO, ROLES_DIR, ansible_playbook
from support import procs

ROLE = ROLES_DIR / "celery_redis"
PASSWORD = "tls-test-celery-password"
ADMIN = "tls-test-admin-password-1234"
CERTS_SCRIPT = REPO / "lab" / "redis-tls-certs.sh"
PROBE = REPO / "deploy" / "opt" / "celery" / "bin" / "celery-kit-probe"


def _certs(directory: Path, *names: str) -> Path:
    done = subprocess.run(["bash", str(CERTS_SCRIPT), str(directory), *(names or ("localhost",))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tls-pki")
    good, other = _certs(base / "good"), _certs(base / "other")
    return {"ca": good / "ca.crt", "cert": good / "redis.crt", "key": good / "redis.key",
            "other_ca": other / "ca.crt"}


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory, pki, log_dir):
    """redis-server started from the role's rendered redis.conf with celery_redis_tls: true."""
    out = tmp_path_factory.mktemp("tls-render")
    port = procs.free_port()
    overrides = {
        "celery_redis_tls": True, "celery_redis_port": port, "celery_redis_bind_addresses": ["127.0.0.1"],
        "celery_redis_password": PASSWORD, "celery_redis_admin_password": ADMIN,
        # Where the role would install the files on a host; here, the test's directory.
        "_celery_redis_auth_conf": str(out / "celery-auth.conf"),
        "_celery_redis_tls_cert": str(pki["cert"]), "_celery_redis_tls_key": str(pki["key"]),
        "_celery_redis_tls_ca": str(pki["ca"]),
    }
    templates = {"etc/redis/redis.conf.j2": "redis.conf", "etc/redis/celery-auth.conf.j2": "celery-auth.conf",
                 "usr/local/sbin/celery-kit-redis-users.j2": "celery-kit-redis-users"}
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the Redis TLS configuration",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [{"name": "Render", "ansible.builtin.template": {
            "src": str(ROLE / "templates" / "{{ item.key }}"), "dest": f"{out}/{{{{ item.value }}}}", "mode": "0600"},
            "loop": "{{ templates | dict2items }}"}],
    }]))
    extra = out / "vars.yml"
    extra.write_text(yaml.safe_dump({**overrides, "templates": templates}))
    result = ansible_playbook(str(playbook), "-e", f"@{extra}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    data = out / "data"
    data.mkdir()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    # Only what differs from a host: the data directory and pid file, and no systemd to notify.
    proc = procs.Proc(f"redis-tls-{port}", [server, str(out / "redis.conf"), "--dir", str(data),
                                            "--pidfile", str(out / "redis.pid"), "--supervised", "no"], log_dir)
    try:
        procs.wait_for_port(port)
        yield {"port": port, "out": out, "proc": proc, **pki}
    finally:
        proc.stop()


def _urls(tls_redis, ca: Path | None = None) -> dict[str, str]:
    base = f"rediss://celery:{PASSWORD}@127.0.0.1:{tls_redis['port']}"
    query = f"?ssl_cert_reqs=required&ssl_ca_certs={ca or tls_redis['ca']}"
    return {"CELERY_BROKER_URL": f"{base}/0{query}", "CELERY_RESULT_BACKEND": f"{base}/1{query}",
            "APP_REDIS_URL": f"{base}/2{query}"}


def _tls_client(tls_redis, ca: Path, **kwargs) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=tls_redis["port"], ssl=True, ssl_cert_reqs="required",
                       ssl_ca_certs=str(ca), socket_timeout=10, **kwargs)


def test_the_rendered_config_listens_with_tls_only(tls_redis):
    conf = (tls_redis["out"] / "redis.conf").read_text().splitlines()
    assert "port 0" in conf
    assert f"tls-port {tls_redis['port']}" in conf
    assert "tls-auth-clients no" in conf


def test_a_plaintext_connection_is_refused(tls_redis):
    plain = redis.Redis(host="127.0.0.1", port=tls_redis["port"], username="celery", password=PASSWORD,
                        socket_timeout=5, socket_connect_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
    # The same credentials over TLS, verified against the CA, log in.
    assert _tls_client(tls_redis, tls_redis["ca"], username="celery", password=PASSWORD).ping()


def test_a_client_trusting_another_ca_is_refused(tls_redis):
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        _tls_client(tls_redis, tls_redis["other_ca"], username="celery", password=PASSWORD).ping()
    cli = subprocess.run(["redis-cli", "--tls", "--cacert", str(tls_redis["other_ca"]), "-p", str(tls_redis["port"]),
                          "PING"], capture_output=True, text=True, timeout=30)
    assert "PONG" not in cli.stdout
    assert "certificate verify failed" in cli.stdout + cli.stderr


def test_the_role_users_script_applies_the_users_over_tls(tls_redis):
    env = {**os.environ, "CELERY_REDIS_AUTH_CONF": str(tls_redis["out"] / "celery-auth.conf"),
           "CELERY_REDIS_ADMIN_PASSWORD": ADMIN}
    done = subprocess.run(["sh", str(tls_redis["out"] / "celery-kit-redis-users")], capture_output=True, text=True,
                          timeout=30, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied 3 users" in done.stdout


def test_the_kit_config_refuses_a_rediss_url_that_does_not_verify(tls_redis):
    env = {**os.environ, **_urls(tls_redis)}
    env["CELERY_BROKER_URL"] = f"rediss://celery:{PASSWORD}@127.0.0.1:{tls_redis['port']}/0"
    done = subprocess.run([sys.executable, "-m", "celeryconfig"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=REPO)
    assert done.returncode != 0
    assert "CELERY_BROKER_URL" in done.stderr and "ssl_cert_reqs=required" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


# Run in a fresh interpreter: celeryconfig reads the URLs from the environment when imported.
CLIENT = textwrap.dedent("""
    import asyncio, json, ssl, sys
    from celery import chord
    from app.celery import app
    from app.state import redis_client

    out = {"broker_use_ssl": {k: (v if k != "ssl_cert_reqs" else int(v))
                              for k, v in (app.conf.broker_use_ssl or {}).items()}}
    out["add"] = app.send_task("app.tasks.math.add", (2, 3), queue="default").get(timeout=60)
    header = [app.signature("app.tasks.math.add", (i, i), queue="default") for i in range(4)]
    out["chord"] = chord(header, app.signature("app.tasks.math.xsum", queue="default")).apply_async().get(timeout=60)
    # The task writes through the app's own Redis (APP_REDIS_URL), and so does this process.
    app.send_task("app.tasks.bulk.notify", ("tls-user", "over-tls"), queue="default").get(timeout=60)
    out["app_redis"] = redis_client().lrange("kit:notified:tls-user", 0, -1)

    # Flower's broker view, built as flower.views.BaseHandler.get_broker builds it: the URL
    # without its query, and the TLS options from broker_use_ssl.
    from flower.utils.broker import Broker
    with app.connection() as conn:
        uri = conn.as_uri(include_password=True)
    broker = Broker(uri, broker_options=app.conf.broker_transport_options, broker_use_ssl=app.conf.broker_use_ssl)
    out["flower_queues"] = asyncio.run(broker.queues(["default"]))
    print(json.dumps(out))
""")


def test_a_worker_round_trip_over_tls(tls_redis, log_dir):
    env = _urls(tls_redis)
    worker = procs.start_worker(log_dir, "tls", "default", concurrency=2, env=env)
    beat = procs.Proc("beat-tls", procs.celery_argv("beat", "-l", "INFO"), log_dir,
                      env={**env, "CELERY_BEAT_TRACE_INTERVAL": "1"})
    try:
        done = subprocess.run([sys.executable, "-c", CLIENT], capture_output=True, text=True, timeout=180,
                              env={**os.environ, **env}, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:] + worker.log()[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["add"] == 5
        assert out["chord"] == 12
        assert out["app_redis"] == ["over-tls"]
        assert out["broker_use_ssl"] == {"ssl_cert_reqs": int(ssl.CERT_REQUIRED), "ssl_ca_certs": str(tls_redis["ca"])}
        assert out["flower_queues"] == [{"name": "default", "messages": 0}]

        # RedBeat holds its lock in Redis and beat's trace task runs through the worker.
        admin = _tls_client(tls_redis, tls_redis["ca"], username="admin", password=ADMIN, db=2)
        deadline = time.monotonic() + 60
        while not admin.llen("kit:beat:trace") and time.monotonic() < deadline:
            assert beat.alive(), beat.log()[-3000:]
            time.sleep(0.5)
        assert admin.llen("kit:beat:trace") > 0, beat.log()[-3000:] + worker.log()[-2000:]
    finally:
        beat.stop()
        worker.stop()
    assert "certificate verify failed" not in worker.log()
    assert "insecure SSL" not in worker.log() + beat.log()


def test_the_release_probe_reaches_the_broker_over_tls_and_not_with_another_ca(tls_redis):
    probe = [sys.executable, str(PROBE), "check", "app"]
    good = subprocess.run(probe, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **_urls(tls_redis)})
    assert good.returncode == 0, good.stdout + good.stderr
    assert "broker answers" in good.stdout
    bad = subprocess.run(probe, capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, **_urls(tls_redis, ca=tls_redis["other_ca"])})
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "the broker did not answer" in bad.stderr
    assert PASSWORD not in bad.stdout + bad.stderr


def _reload_handler(tls_redis, tmp_path) -> subprocess.CompletedProcess:
    """The role's handler "Reload the Redis certificates", run as Ansible would, with a systemctl
    that only records that it was called."""
    handlers = yaml.safe_load((ROLE / "handlers" / "main.yml").read_text())
    handler = next(h for h in handlers if h["name"] == "Reload the Redis certificates")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/systemctl.calls\n')
    (fake_bin / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "REDISCLI_AUTH": ADMIN,
           "CA": str(tls_redis["ca"]), "CERT": str(tls_redis["cert"]), "KEY": str(tls_redis["key"]),
           "HOST": "127.0.0.1", "PORT": str(tls_redis["port"]), "ADMIN": "admin", "SERVICE": "redis-server.service"}
    return subprocess.run(["sh", "-c", handler["ansible.builtin.shell"]["cmd"]], capture_output=True, text=True,
                          timeout=60, env=env)


def _served_certificate(tls_redis) -> str:
    return ssl.get_server_certificate(("127.0.0.1", tls_redis["port"]))


def test_a_renewed_certificate_is_loaded_without_a_restart(tls_redis, tmp_path):
    """Last of the tests that use the server: it reissues the server certificate in place."""
    connected = _tls_client(tls_redis, tls_redis["ca"], username="admin", password=ADMIN)
    run_id = connected.info("server")["run_id"]
    before = _served_certificate(tls_redis)
    _certs(tls_redis["cert"].parent, "localhost", "127.0.0.2")  # the same CA, other names: a new certificate
    assert _served_certificate(tls_redis) == before

    done = _reload_handler(tls_redis, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "reloaded", done.stdout + done.stderr
    assert not (tmp_path / "systemctl.calls").exists()
    served = _served_certificate(tls_redis)
    assert served != before
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(tls_redis["cert"].read_text())
    # The connection made before the reload is still the same, on the same server.
    assert connected.info("server")["run_id"] == run_id


def test_a_replaced_ca_restarts_redis_instead(tls_redis, tmp_path):
    """The new CA cannot verify the running server's certificate: the handler restarts Redis."""
    other = tls_redis["other_ca"].parent
    for name in ("ca.crt", "redis.crt", "redis.key"):
        shutil.copy(other / name, tls_redis["cert"].parent / name)
    done = _reload_handler(tls_redis, tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("restarted:"), done.stdout + done.stderr
    assert (tmp_path / "systemctl.calls").read_text().split() == ["restart", "redis-server.service"]


# ---------------------------------------------------------------------------------------------
# Preflight: site.yml refuses inconsistent TLS input before any host changes (as
# tests/test_roles_preflight.py runs it: --check, preflight only, against this machine).
# ---------------------------------------------------------------------------------------------
CA_ON_HOST = "/etc/celery/redis-ca.crt"
VERIFY = f"?ssl_cert_reqs=required&ssl_ca_certs={CA_ON_HOST}"
TLS_URL = "rediss://celery:preflight-test-redis-password@10.99.0.10:6379/0" + VERIFY


def _tls_on(files: dict[str, Path]) -> dict:
    return {"celery_redis_tls": True, "celery_redis_tls_cert_src": str(files["cert"]),
            "celery_redis_tls_key_src": str(files["key"]), "celery_redis_tls_ca_src": str(files["ca"]),
            "celery_common_redis_ca_src": str(files["ca"]), "celery_common_broker_url": TLS_URL,
            "celery_common_result_backend": TLS_URL.replace("/0?", "/1?")}


PREFLIGHT_CASES = {
    "cert-missing": ({"celery_redis_tls_cert_src": ""},
                     "celery_redis_tls_cert_src: required with celery_redis_tls: true"),
    "key-not-a-file": ({"celery_redis_tls_key_src": "/nonexistent/redis.key"},
                       "celery_redis_tls_key_src: /nonexistent/redis.key is not a file on the controller"),
    "ca-missing": ({"celery_redis_tls_ca_src": ""}, "celery_redis_tls_ca_src: required with celery_redis_tls: true"),
    "plaintext-url-while-tls-is-on": (
        {"celery_common_result_backend": "redis://celery:preflight-test-redis-password@10.99.0.10:6379/1"},
        "celery_common_result_backend: redis://********@10.99.0.10:6379/1 is plaintext, but Redis on node1 "
        "accepts TLS only"),
    "tls-url-while-tls-is-off": ({"celery_redis_tls": False},
                                 "celery_common_broker_url: rediss://********@10.99.0.10:6379/0" + VERIFY
                                 + " uses TLS, but Redis on node1 serves plaintext only"),
    "tls-url-that-does-not-verify": (
        {"celery_common_broker_url": TLS_URL.replace("ssl_cert_reqs=required", "ssl_cert_reqs=none")},
        "does not verify Redis' certificate; add ssl_cert_reqs=required"),
    "tls-url-with-another-ca": (
        {"celery_common_broker_url": TLS_URL.replace(CA_ON_HOST, "/etc/ssl/certs/ca-certificates.crt")},
        f"must name the CA the role installs: ssl_ca_certs={CA_ON_HOST}"),
    "tls-url-without-a-ca-to-copy": ({"celery_common_redis_ca_src": ""}, "celery_common_redis_ca_src: required"),
    "url-host-not-in-the-certificate": ({"cert": "elsewhere"},
                                        "host 10.99.0.10 in rediss://********@10.99.0.10:6379/0"),
}


@pytest.fixture(scope="module")
def preflight_files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    base = tmp_path_factory.mktemp("tls-preflight")
    good, elsewhere = _certs(base / "good", "10.99.0.10"), _certs(base / "elsewhere", "10.99.0.99")
    return {name: {"ca": d / "ca.crt", "cert": d / "redis.crt", "key": d / "redis.key"}
            for name, d in (("good", good), ("elsewhere", elsewhere))}


@pytest.fixture(scope="module")
def preflight_runs(preflight_files, tmp_path_factory):
    """The valid TLS inventory and every bad case, three ansible-playbook runs at a time."""
    def run(case):
        if case == "valid":
            overrides = _tls_on(preflight_files["good"])
        else:
            changes = dict(PREFLIGHT_CASES[case][0])
            files = preflight_files[changes.pop("cert", "good")]
            overrides = {**_tls_on(files), **changes}
        return case, _run(tmp_path_factory.mktemp(f"preflight-{case}"), overrides=overrides)

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(run, ["valid", *PREFLIGHT_CASES]))


def test_a_valid_tls_inventory_passes_preflight(preflight_runs):
    result = preflight_runs["valid"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "PLAY [Preflight" in result.stdout


@pytest.mark.parametrize("case", sorted(PREFLIGHT_CASES))
def test_inconsistent_tls_input_fails_in_preflight(preflight_runs, case):
    result = preflight_runs[case]
    output = result.stdout + result.stderr
    assert result.returncode != 0, textwrap.shorten(output, 3000)
    assert PREFLIGHT_CASES[case][1] in output, output[-4000:]
    assert not _started_a_change_play(output), "a play that changes hosts started despite bad input"
    for name in ("celery_redis_password", "celery_redis_admin_password"):
        assert VALID[name] not in output, f"{name} printed"


def test_the_rotation_check_reads_rediss_urls_from_the_environment_file():
    """playbooks/rotate-redis-password.yml checks common.env's logins; rediss:// URLs count too."""
    sys.path.insert(0, str(REPO / "ansible" / "plugins" / "filter"))
    from celery_kit import celery_kit_env_login_problems

    env = f"CELERY_BROKER_URL='{TLS_URL}'\n"
    assert celery_kit_env_login_problems(env, "common.env", "celery", "preflight-test-redis-password") == []
    problems = celery_kit_env_login_problems(env, "common.env", "celery", "another-password-entirely")
    assert problems == ["common.env: CELERY_BROKER_URL does not log in as 'celery' with celery_redis_password "
                        "(values not shown)"]
