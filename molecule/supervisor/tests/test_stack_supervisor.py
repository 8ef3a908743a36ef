"""The default scenario's stack checks, run against the supervisor layout.

Every check in molecule/default/tests/test_stack.py asks the host which service manager it
uses (celery_common_service_manager) and looks at systemd units or supervisor programs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "default" / "tests"))

from test_stack import *  # noqa: E402,F401,F403


def test_supervisord_runs_as_the_service_user_under_systemd(host):
    only(host, "celery_workers")  # noqa: F405
    unit = host.service("celery-supervisor")
    assert unit.is_enabled and unit.is_running
    assert host.process.get(comm="supervisord").user == "celery"
    assert not host.service("supervisor").is_running  # Debian's root supervisord stays off


def test_no_systemd_celery_units_run_next_to_supervisor(host):
    only(host, "celery_workers")  # noqa: F405
    units = host.run("systemctl list-units 'celery-worker@*' 'celery-beat*' 'celery-flower*' "
                     "--no-legend --plain").stdout
    assert units.strip() == ""
