"""Print the requirements a wheelhouse still lacks for the *target* interpreter.

``pip download --python-version 3.11.2`` picks wheels by the target's tags and
Requires-Python, but evaluates environment markers against the interpreter
running pip. redis, for one, needs ``async-timeout; python_full_version <
"3.11.3"``: the controller (3.11.7) skips it, Debian 12's 3.11.2 needs it. This
walks the dependency graph of the wheels already downloaded, evaluating markers
for the target, and prints one requirement per line for whatever is missing.

Usage: python wheelhouse_closure.py WHEELHOUSE TARGET_PYTHON_VERSION SEED_REQUIREMENTS...
       python wheelhouse_closure.py --pin WHEELHOUSE NAME...   (prints NAME==VERSION found there)
"""

import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def target_environment(version: str) -> dict[str, str]:
    env = default_environment()
    env.update(python_full_version=version, implementation_version=version,
               python_version=".".join(version.split(".")[:2]))
    return env


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(zf.read(name).decode())
    return [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]


def missing(wheelhouse: Path, version: str, seeds: list[str]) -> list[str]:
    wheels = {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in wheelhouse.glob("*.whl")}
    env = target_environment(version)
    todo = [Requirement(s) for s in seeds]
    seen: set[tuple[str, frozenset]] = set()
    lacking = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        if name not in wheels:
            lacking[name] = f"{req.name}{req.specifier}"
            continue
        for dep in wheel_requirements(wheels[name]):
            extras = {""} | set(req.extras)
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                todo.append(dep)
    return sorted(lacking.values())


def seed_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def pins(wheelhouse: Path, names: list[str]) -> list[str]:
    wanted = {canonicalize_name(Requirement(n).name) for n in names}
    found = (parse_wheel_filename(w.name) for w in wheelhouse.glob("*.whl"))
    return sorted(f"{name}=={version}" for name, version, _, _ in found if name in wanted)


if __name__ == "__main__":
    if sys.argv[1] == "--pin":
        for line in pins(Path(sys.argv[2]), sys.argv[3:]):
            print(line)
        sys.exit(0)
    house, target = Path(sys.argv[1]), sys.argv[2]
    seeds = []
    for arg in sys.argv[3:]:
        seeds += seed_lines(Path(arg)) if Path(arg).is_file() else [arg]
    for line in missing(house, target, seeds):
        print(line)
