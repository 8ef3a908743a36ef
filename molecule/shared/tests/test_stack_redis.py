"""The broker: Redis up, reachable on loopback and the private address only, every client
authenticated, the queues safe from the Celery user, TLS exactly when the lab turns it on."""

import labtest
from stack import hv, redis_cli

testinfra_hosts = ["ansible://redis"]


@labtest.unit("redis-server")
def test_redis_enabled_running_and_listening_only_on_loopback_and_private(host):
    assert host.service("redis-server").is_enabled and host.service("redis-server").is_running
    listening = {str(s) for s in host.socket.get_listening_sockets() if s.endswith(":6379")}
    assert listening == {"tcp://127.0.0.1:6379", f"tcp://{labtest.private_address(host)}:6379"}


def test_redis_demands_the_password_and_keeps_queues_safe(host):
    unauthenticated = host.run(f"sudo {labtest.REDIS_CLI} -h 127.0.0.1 ping")
    assert "NOAUTH" in unauthenticated.stdout + unauthenticated.stderr
    # The celery user runs Celery's commands only; the default user is disabled.
    assert redis_cli(host, "ping", user="celery") == "PONG"
    # (Commands that would do no harm if they did run.)
    for command in (["config", "get", "appendonly"], ["replicaof", "no", "one"], ["acl", "list"], ["keys", "*"]):
        assert "NOPERM" in redis_cli(host, *command, user="celery"), command
    bare = host.run(f"REDISCLI_AUTH=%s sudo --preserve-env=REDISCLI_AUTH {labtest.REDIS_CLI} --no-auth-warning ping",
                    hv(host)["celery_redis_password"])
    assert "WRONGPASS" in bare.stdout + bare.stderr
    assert redis_cli(host, "config", "get", "appendonly").split() == ["appendonly", "yes"]
    assert redis_cli(host, "config", "get", "maxmemory-policy").split() == ["maxmemory-policy", "noeviction"]
    assert redis_cli(host, "config", "get", "protected-mode").split() == ["protected-mode", "yes"]
    with host.sudo():
        auth = host.file("/etc/redis/celery-auth.conf")
        assert (auth.user, auth.group, auth.mode) == ("root", "redis", 0o640)
        # Every restart replayed the whole append-only file: no transaction in it was refused.
        refused = host.run("journalctl -u redis-server --no-pager -o cat | grep -c 'AOF-loading-client' || true")
        assert refused.stdout.strip() == "0", "Redis dropped transactions from its AOF at a restart"


def test_redis_speaks_tls_only_when_the_lab_turns_it_on(host):
    """LAB_REDIS_TLS=1: Redis listens with TLS only (a plaintext client gets no reply) and every
    Celery URL is rediss:// verified against the CA; otherwise plaintext, and no TLS anywhere."""
    with host.sudo():
        conf = host.file("/etc/redis/redis.conf").content_string
    plaintext = host.run("timeout 10 redis-cli -h 127.0.0.1 ping")
    if labtest.REDIS_TLS:
        assert "\nport 0\n" in conf and "\ntls-port 6379\n" in conf
        assert "NOAUTH" not in plaintext.stdout and "PONG" not in plaintext.stdout, plaintext.stdout
        assert redis_cli(host, "ping", user="celery") == "PONG"
        wrong_ca = host.run("REDISCLI_AUTH=x timeout 10 redis-cli --tls --cacert /etc/ssl/certs/ca-certificates.crt"
                            " --no-auth-warning -h 127.0.0.1 ping")
        assert "PONG" not in wrong_ca.stdout and "WRONGPASS" not in wrong_ca.stdout, wrong_ca.stdout
    else:
        assert "tls-port" not in conf
        assert "NOAUTH" in plaintext.stdout + plaintext.stderr
