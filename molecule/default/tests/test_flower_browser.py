"""Flower in a browser, as an operator opens it through the lab's tunnel (platforms[].lab_forwards:
the default scenario forwards Flower's port), with the screenshots docs/ shows."""

import subprocess

import labtest
from stack import REPO, hv, lab_state, worker_nodes

testinfra_hosts = ["ansible://flower"]

SCREENSHOTS = REPO / "docs" / "images"


def _tunnel_port(host) -> int | None:
    """The 127.0.0.1 port lab/labctl forwards to this VM's Flower (None: the scenario opens none)."""
    [vm] = [vm for vm in lab_state()["vms"] if vm["name"] == host.backend.get_hostname()]
    return vm["forwards"].get("flower")


def _chromium(*args: str) -> str:
    """Headless Chromium on the controller (Debian's package, installed by lab/lab.mk)."""
    out = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1440,900", "--virtual-time-budget=10000", *args],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@labtest.unit("celery-flower")
def test_flower_in_a_browser_logs_in_and_lists_every_worker(host):
    port = _tunnel_port(host)
    assert port is not None, "this scenario opens no tunnel to Flower (platforms[].lab_forwards)"
    password = hv(host)["celery_flower_basic_auth_password"]
    base = f"http://admin:{password}@127.0.0.1:{port}"
    expected = worker_nodes(host)
    workers = _chromium("--dump-dom", f"{base}/workers")
    assert 'id="workers-table"' in workers, workers[-2000:]
    missing = sorted(n for n in expected if n not in workers)
    assert not missing, f"Flower's workers page, rendered in Chromium, does not list {missing}"
    tasks = _chromium("--dump-dom", f"{base}/tasks")
    assert 'id="tasks-table"' in tasks, tasks[-2000:]
    assert _chromium("--dump-dom", f"http://127.0.0.1:{port}/workers").count("workers-table") == 0, (
        "the workers page rendered without the password")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for page in ("workers", "tasks"):
        shot = SCREENSHOTS / f"flower-{page}.png"
        _chromium(f"--screenshot={shot}", f"{base}/{page}")
        assert shot.stat().st_size > 10_000, f"{shot} is (nearly) empty"
