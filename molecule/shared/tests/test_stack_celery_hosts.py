"""Every Celery host (workers, beat, Flower): Redis URLs, secret files, the service user, and one
service manager for all of the host's Celery services."""

import labtest
from stack import manager

testinfra_hosts = ["ansible://celery_workers", "ansible://celery_beat", "ansible://flower"]


def test_celery_urls_use_the_transport_redis_speaks(host):
    with host.sudo():
        env = host.file("/etc/celery/common.env").content_string
    urls = [line.split("=", 1)[1].strip("'\"") for line in env.splitlines()
            if line.split("=", 1)[0] in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "APP_REDIS_URL")]
    assert len(urls) == 3, f"{len(urls)} Redis URLs in common.env"
    for url in urls:
        if labtest.REDIS_TLS:
            assert url.startswith("rediss://") and "ssl_cert_reqs=required" in url
            assert "ssl_ca_certs=/etc/celery/redis-ca.crt" in url
        else:
            assert url.startswith("redis://")
    with host.sudo():
        assert host.file("/etc/celery/redis-ca.crt").exists == labtest.REDIS_TLS


def test_secret_files_are_root_owned_and_group_readable_only(host):
    with host.sudo():
        conf = host.file("/etc/celery")
        assert (conf.user, conf.group, conf.mode) == ("root", "celery", 0o750)
        names = host.run("find /etc/celery -maxdepth 1 -name '*.env' -printf '%f\\n'").stdout.split()
        assert "common.env" in names
        for name in names:
            f = host.file(f"/etc/celery/{name}")
            assert (f.user, f.group, f.mode) == ("root", "celery", 0o640), name


def test_service_user_cannot_log_in_and_code_is_read_only_for_it(host):
    user = host.user("celery")
    assert user.shell == "/usr/sbin/nologin"
    current = host.file("/opt/celery/current")
    assert current.is_symlink and current.linked_to.startswith("/opt/celery/releases/")
    assert host.run("sudo -u celery test -w /opt/celery/current/venv/bin").rc != 0


def test_supervisord_runs_as_the_service_user_exactly_where_supervisor_manages_celery(host):
    """A supervisor host runs celery-supervisor.service (supervisord as the service user, Debian's
    root supervisord off); a systemd host has no celery-supervisor.service and no supervisord of the
    service user."""
    unit = host.service("celery-supervisor")
    if manager(host) == "supervisor":
        assert unit.is_enabled and unit.is_running
        assert host.process.get(comm="supervisord").user == "celery"
        assert not host.service("supervisor").is_running  # Debian's root supervisord stays off
    else:  # celery_supervisor's absent.yml
        assert not unit.is_running
        assert not host.file("/etc/systemd/system/celery-supervisor.service").exists
        assert [p.pid for p in host.process.filter(comm="supervisord") if p.user == "celery"] == []


def test_celery_services_run_under_one_manager_only(host):
    """No systemd Celery unit runs next to supervisor's programs, and no supervisor program next to
    the systemd units."""
    units = host.run("systemctl list-units 'celery-worker@*' 'celery-worker-surge@*' 'celery-beat*' "
                     "'celery-flower*' --no-legend --plain").stdout
    if manager(host) == "supervisor":
        assert units.strip() == ""
    else:
        assert units.strip() != ""
        assert not host.file("/etc/celery/supervisor/supervisord.conf").exists


def test_every_celery_unit_runs_with_the_shared_hardening(host):
    """systemd itself applies the hardening drop-in every celery-* unit shares
    (celery-.service.d/10-hardening.conf): each running Celery unit lists it, carries its settings
    and scores 1.5 or lower with systemd-analyze security on the host."""
    units = host.check_output(
        "systemctl list-units --type=service --state=running --no-legend --plain 'celery-*' | awk '{print $1}'").split()
    assert units, "no running celery-* unit"
    for unit in units:
        shown = host.check_output("systemctl show -p DropInPaths -p ProtectSystem -p NoNewPrivileges %s", unit)
        assert "/etc/systemd/system/celery-.service.d/10-hardening.conf" in shown, f"{unit}: {shown}"
        assert "ProtectSystem=strict" in shown and "NoNewPrivileges=yes" in shown, f"{unit}: {shown}"
        with host.sudo():
            score = host.check_output("systemd-analyze security %s | tail -n 1", unit)
        assert float(score.split(":")[1].split()[0]) <= 1.5, f"{unit}: {score}"
