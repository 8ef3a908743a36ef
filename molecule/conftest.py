"""pytest glue shared by every Molecule scenario under molecule/.

pytest loads this file for any test below molecule/ (the repo root holds the
pytest configuration, so it is the rootdir). It makes ``molecule/shared``
importable (``import labtest``) and, when a test marked with
``labtest.unit(...)`` fails, appends the named units' journals to the report.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "shared"))

import labtest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_units(*names): systemd units whose journal is shown on failure")


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
