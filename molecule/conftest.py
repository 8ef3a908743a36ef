"""pytest glue shared by every Molecule scenario under molecule/.

pytest loads this file for any test below molecule/ (the repo root holds the
pytest configuration, so it is the rootdir). It makes ``molecule/shared``
importable (``import labtest``), runs a test marked ``labtest.on_manager(NAME)``
only on the hosts whose Celery services run under NAME and, when a test marked
with ``labtest.unit(...)`` fails, appends the named units' journals to the report.

Which hosts a test module runs on is its ``testinfra_hosts`` (an inventory group
per tier); no test skips itself because of the host it runs on.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "shared"))

import labtest  # noqa: E402

HOSTLESS = pytest.StashKey[list]()


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_units(*names): systemd units whose journal is shown on failure")
    config.addinivalue_line("markers", "lab_service_manager(name): run only on hosts whose Celery services "
                                       "run under this manager")


def pytest_collection_modifyitems(config, items):
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("lab_service_manager")
        callspec = getattr(item, "callspec", None)
        host = callspec.params.get("_testinfra_host") if callspec else None
        if marker is None or host is None:
            kept.append(item)
            continue
        used = labtest.hostvars(host).get("celery_common_service_manager", "systemd")
        (kept if used == marker.args[0] else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    tests = {item.nodeid.split("[")[0] for item in kept}
    config.stash[HOSTLESS] = sorted({item.nodeid.split("[")[0] for item in dropped} - tests)


def pytest_terminal_summary(terminalreporter, config):
    for nodeid in config.stash.get(HOSTLESS, []):
        terminalreporter.write_line(f"runs on no host of this inventory (service manager): {nodeid}", yellow=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("lab_units")
    host = item.funcargs.get("host") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or marker is None or host is None:
        return
    for name in marker.args:
        try:
            text = labtest.journal(host, name)
        except Exception as exc:  # the host may be the very thing that broke
            text = f"(could not read the journal: {exc})"
        report.sections.append((f"journal of {name} on {host.backend.hostname}", text))
