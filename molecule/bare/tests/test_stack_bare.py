"""The default scenario's stack checks, run against the bare scenario's two hosts.

Every check in molecule/default/tests/test_stack.py asks the host which service manager it
uses (celery_common_service_manager) and looks at systemd units or supervisor programs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "default" / "tests"))

from test_stack import *  # noqa: E402,F401,F403
