"""Helpers for testinfra tests of any lab scenario.

Import from a scenario's tests (``molecule/conftest.py`` puts this directory on
``sys.path``). Hosts come from Molecule's inventory; host vars such as
``lab_private_address`` are read through testinfra's Ansible backend.
"""

import os

import pytest

JOURNAL_LINES = 60

# The lab's Redis speaks TLS only when LAB_REDIS_TLS is set (ansible/inventories/lab/group_vars/all.yml
# reads the same variable); redis-cli on the broker then verifies it against the CA the role installed.
_LAB_REDIS_TLS = os.environ.get("LAB_REDIS_TLS", "")
if _LAB_REDIS_TLS not in ("", "0", "false", "no", "1", "true", "yes"):
    raise SystemExit(f"LAB_REDIS_TLS={_LAB_REDIS_TLS!r} is not one of 1, true, yes (TLS on) or 0, false, no, "
                     "empty (off)")
REDIS_TLS = _LAB_REDIS_TLS in ("1", "true", "yes")
REDIS_CLI = "redis-cli --tls --cacert /etc/redis/tls/ca.crt" if REDIS_TLS else "redis-cli"


def unit(*names: str):
    """Mark a test as checking systemd units; on failure their journals are printed."""
    return pytest.mark.lab_units(*names)


def on_manager(name: str):
    """Run a test only on those hosts of its module's ``testinfra_hosts`` whose Celery services run
    under ``name`` (``celery_common_service_manager``, systemd when unset). molecule/conftest.py
    deselects the other hosts and names every test this leaves on no host."""
    return pytest.mark.lab_service_manager(name)


def hostvars(host) -> dict:
    return host.ansible.get_variables()


def private_address(host) -> str:
    return hostvars(host)["lab_private_address"]


def address_of(host, name: str) -> str:
    """The private address inventory host ``name`` has, as seen by ``host``'s inventory."""
    return host.backend.ansible_runner.get_variables(name)["lab_private_address"]


def journal(host, name: str, lines: int = JOURNAL_LINES) -> str:
    cmd = host.run(f"sudo journalctl --no-pager -o short-precise -n {lines} -u {name}")
    return cmd.stdout or cmd.stderr


def tcp_roundtrip(host, address: str, port: int, line: str) -> str:
    """Connect *from* ``host`` to ``address:port``, send ``line`` + CRLF, return the first reply line."""
    script = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n"
        "s.sendall(sys.argv[3].encode() + b'\\r\\n')\n"
        "print(s.recv(256).decode().splitlines()[0])\n"
    )
    return host.check_output("python3 -c %s %s %s %s", script, address, str(port), line)
