"""Flower hosts: Flower on the private address only, behind its password, behind systemd's IP
allow-list where systemd runs it, listing every declared worker."""

import json
import time

import labtest
from stack import flower_get, worker_nodes

testinfra_hosts = ["ansible://flower"]


@labtest.unit("celery-flower")
def test_flower_listens_on_the_private_address_only(host):
    listening = {str(s) for s in host.socket.get_listening_sockets() if s.endswith(":5555")}
    assert listening == {f"tcp://{labtest.private_address(host)}:5555"}


@labtest.unit("celery-flower")
def test_flower_requires_the_password(host):
    assert flower_get(host, "/", auth=False)[0] == 401
    assert flower_get(host, "/api/workers", auth=False)[0] == 401
    assert flower_get(host, "/", auth=True)[0] == 200


CONNECT_FROM = """
import socket, sys
s = socket.socket()
s.settimeout(5)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    print(s.recv(12).decode() or "closed")
except OSError as e:
    print(type(e).__name__)
"""


@labtest.on_manager("systemd")  # the IP allow-list is a systemd unit setting
@labtest.unit("celery-flower")
def test_flower_drops_clients_outside_its_allow_list(host):
    """systemd's IPAddressAllow admits the private segment only: a connection from the same VM's
    NAT address (outside the allow-list) never gets an answer, one from the private address does."""
    private = labtest.private_address(host)
    addresses = host.check_output("ip -4 -o addr show scope global | awk '{print $4}'").split()
    outside = [a.split("/")[0] for a in addresses if a.split("/")[0] != private]
    assert outside, addresses
    assert host.check_output("python3 -c %s %s %s 5555", CONNECT_FROM, private, private).startswith("HTTP/1.1 401")
    assert host.check_output("python3 -c %s %s %s 5555", CONNECT_FROM, outside[0], private) == "TimeoutError"


@labtest.unit("celery-flower")
def test_flower_lists_every_worker_and_metrics_report_them_online(host):
    expected = worker_nodes(host)
    assert expected
    # Flower learns of workers from their replies and heartbeats: on a busy host both may lag.
    deadline = time.time() + 180
    while True:
        code, body = flower_get(host, "/api/workers?refresh=1", auth=True)
        seen = set(json.loads(body)) if code == 200 else set()
        metrics_code, metrics = flower_get(host, "/metrics", auth=False)
        offline = {n for n in expected if f'flower_worker_online{{worker="{n}"}} 1.0' not in metrics}
        if (expected <= seen and not offline) or time.time() > deadline:
            break
        time.sleep(5)
    assert expected <= seen
    assert metrics_code == 200
    assert not offline, f"/metrics does not report these workers online: {sorted(offline)}"
