"""A Celery app that is not the sample, for "bring your own app": parcel.

It has none of the kit's configuration on purpose: its own package and distribution
(``parcel`` / ``parcel-app``), built with flit rather than setuptools, tasks on Celery's default
queue ``celery`` (no routes), broker and result backend from its own environment variables, and
Celery's defaults for everything else. ``python -m parcel.check N`` sends N tasks and waits for
their results, so the same app can be exercised wherever only its venv and environment exist
(a test's venv, or a host the roles deployed it to).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
# The distributions whose versions parcel takes from the kit's pins, so the two never drift.
KIT_PINNED = ("celery", "kombu", "redis")


@dataclass(frozen=True)
class OwnApp:
    """What an operator needs to know to deploy the app written to ``root``."""
    root: Path
    package: str = "parcel"
    dist: str = "parcel-app"
    version: str = "0.1.0"
    app: str = "parcel"                # celery -A parcel
    queue: str = "celery"              # Celery's default queue: the app routes nothing
    task: str = "parcel.tasks.add"
    check: str = "parcel.check"        # python -m parcel.check N
    broker_env: str = "PARCEL_BROKER_URL"
    backend_env: str = "PARCEL_RESULT_BACKEND"

    @property
    def spec(self) -> str:
        """The package spec the roles install (celery_common_packages)."""
        return f"{self.dist}=={self.version}"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements.txt"

    @property
    def wheel(self) -> str:
        return f"{self.dist.replace('-', '_')}-{self.version}-py3-none-any.whl"


def kit_pins(path: Path = REPO / "requirements" / "app.txt") -> dict[str, str]:
    """The exact versions requirements/app.txt pins for KIT_PINNED."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if req.name.lower() in KIT_PINNED and len(specs) == 1 and specs[0].operator == "==":
            pins[req.name.lower()] = specs[0].version
    missing = set(KIT_PINNED) - set(pins)
    if missing:
        raise ValueError(f"{path} pins no exact version of {', '.join(sorted(missing))}")
    return pins


def write_own_app(root: Path) -> OwnApp:
    """Write the parcel project into ``root`` (created if needed) and describe it."""
    app = OwnApp(root=root)
    pins = kit_pins()
    files = {
        "pyproject.toml": f"""\
            [build-system]
            requires = ["flit_core>=3.4,<4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "{app.dist}"
            version = "{app.version}"
            description = "Parcel tracking: a Celery app deployed with the Celery deployment kit"
            requires-python = ">=3.11"
            dependencies = ["celery[redis]>=5.7,<5.8"]

            [tool.flit.module]
            name = "{app.package}"
            """,
        "requirements.txt": f"""\
            # parcel's runtime dependencies: Celery, kombu and redis-py at the versions the kit pins.
            celery[redis]=={pins["celery"]}
            kombu=={pins["kombu"]}
            redis=={pins["redis"]}
            """,
        "parcel/__init__.py": '''\
            """Parcel tracking: tasks run by Celery workers."""
            ''',
        "parcel/celery.py": f'''\
            """The Celery app. Its broker and result backend come from parcel's own environment
            variables; everything else is Celery's default (queue "celery", early acks, prefetch 4)."""
            import os

            from celery import Celery

            app = Celery("{app.package}", include=["{app.package}.tasks"])
            app.conf.update(
                broker_url=os.environ.get("{app.broker_env}", "redis://127.0.0.1:6379/0"),
                result_backend=os.environ.get("{app.backend_env}", "redis://127.0.0.1:6379/1"),
            )
            ''',
        "parcel/tasks.py": '''\
            from .celery import app


            @app.task
            def add(x: int, y: int) -> int:
                return x + y
            ''',
        "parcel/check.py": f'''\
            """Send N {app.task} tasks and wait for their results.

            Usage: python -m {app.check} N [--timeout SECONDS]
            Prints one JSON line {{"sent": N, "done": D, "results_ok": true|false}}; exits 1 unless
            every task came back with the right result within the timeout.
            """
            import argparse
            import json
            import sys
            import time

            from .tasks import add


            def main(argv=None) -> int:
                parser = argparse.ArgumentParser(prog="python -m {app.check}", description=__doc__.splitlines()[0])
                parser.add_argument("count", type=int)
                parser.add_argument("--timeout", type=float, default=60.0)
                args = parser.parse_args(argv)
                results = [(i, add.delay(i, i)) for i in range(args.count)]
                deadline = time.monotonic() + args.timeout
                done = right = 0
                for i, result in results:
                    try:
                        value = result.get(timeout=max(deadline - time.monotonic(), 0.1))
                    except Exception as exc:
                        print(f"{{result.id}}: {{type(exc).__name__}}: {{exc}}", file=sys.stderr)
                        continue
                    done += 1
                    right += value == 2 * i
                ok = right == len(results)
                print(json.dumps({{"sent": len(results), "done": done, "results_ok": ok}}))
                return 0 if ok else 1


            if __name__ == "__main__":
                sys.exit(main())
            ''',
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return app
