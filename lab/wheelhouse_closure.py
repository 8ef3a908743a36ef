"""Requirements files and wheel closures for lab/build-wheelhouse.sh, evaluated for the *target*.

``pip download --python-version 3.11.2`` picks wheels by the target's tags and
Requires-Python, but evaluates environment markers against the interpreter
running pip. redis, for one, needs ``async-timeout; python_full_version <
"3.11.3"``: the controller (3.11.7) skips it, Debian 12's 3.11.2 needs it. This
walks the dependency graph of the wheels already downloaded, evaluating markers
for the target, and prints one requirement per line for whatever is missing.

The requirements file is an app's requirements or lock file in pip's format:
requirement lines (extras, markers, ``--hash`` options, ``\\`` continuations),
comments, ``-r FILE`` includes (inlined by --flatten, for the copy that goes into
the wheelhouse) and pip's index options (``--index-url`` and the like: pip
download uses them; the copy leaves them out, since targets install offline and
an index URL may carry a token). What an offline install from the wheelhouse
cannot use is refused, naming the file and line: editables (``-e``), constraint
files (``-c``), bare paths and URLs.

Usage: python wheelhouse_closure.py WHEELHOUSE TARGET_PYTHON_VERSION SEED...
           (SEED: a requirements file, or one requirement such as the app's own name)
       python wheelhouse_closure.py --flatten REQUIREMENTS_FILE
           (the file with its -r includes inlined; exit 2 naming what it refuses)
       python wheelhouse_closure.py --pin [--hashes] WHEELHOUSE NAME...
           (NAME==VERSION of the wheels found there, with --hash=sha256:... if --hashes)
       python wheelhouse_closure.py --spec WHEEL
           (NAME==VERSION of one wheel, from its file name)
"""

from __future__ import annotations

import hashlib
import shlex
import sys
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

INCLUDE = ("-r", "--requirement")
REFUSED = {
    "-e": "an editable install cannot come from a wheelhouse (the app's own wheel is built from its project:"
          " drop the line; uv export leaves it out with --no-emit-project)",
    "--editable": "see -e",
    "-c": "constraint files are not supported: pin the versions in the requirements file itself",
    "--constraint": "see -c",
}
# Options for finding packages: pip download uses them, the wheelhouse's copy leaves them out.
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host")


class RequirementsError(Exception):
    """A line of a requirements file the wheelhouse cannot use; the text names file and line."""


@dataclass
class Line:
    """One logical line (continuations joined) and the physical lines it came from."""
    path: Path
    number: int
    physical: list[str]
    text: str = field(init=False)

    def __post_init__(self):
        joined = " ".join(p[:-1] if p.endswith("\\") else p for p in self.physical)
        self.text = strip_comment(joined).strip()

    def where(self) -> str:
        return f"{self.path}:{self.number}"


def strip_comment(line: str) -> str:
    """pip's rule: ``#`` at the start of a line or after whitespace starts a comment."""
    if line.lstrip().startswith("#"):
        return ""
    for i, char in enumerate(line):
        if char == "#" and i > 0 and line[i - 1].isspace():
            return line[:i]
    return line


def logical_lines(path: Path) -> list[Line]:
    lines: list[Line] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not pending:
            start = number
        pending.append(raw)
        if not raw.endswith("\\") or raw.lstrip().startswith("#"):
            lines.append(Line(path, start, pending))
            pending = []
    if pending:
        lines.append(Line(path, start, pending))
    return lines


def option_of(text: str) -> tuple[str, str]:
    """``-r x``, ``-rx``, ``--requirement=x`` -> (option, value); value may be empty."""
    head, _, rest = text.partition(" ")
    if head.startswith("--"):
        name, eq, value = head.partition("=")
        return name, (value if eq else rest).strip()
    if len(head) > 2:
        return head[:2], (head[2:] + " " + rest).strip()
    return head, rest.strip()


def requirement_of(line: Line) -> Requirement:
    """The requirement of a line, its per-requirement options (``--hash``) left out."""
    words = line.text.split()
    spec = []
    for word in words:
        if word.startswith("-"):
            break
        spec.append(word)
    try:
        return Requirement(" ".join(spec))
    except InvalidRequirement as exc:
        raise RequirementsError(f"{line.where()}: not a requirement the wheelhouse can hold ({line.text!r}):"
                                f" {exc}; give NAME[extras]==VERSION (a path or a URL is not"
                                " supported)") from None


def include_path(line: Line, value: str) -> Path:
    if not value:
        raise RequirementsError(f"{line.where()}: {line.text!r} names no file")
    if "://" in value:
        raise RequirementsError(f"{line.where()}: {value} is a URL; only files can be included")
    target = (line.path.parent / shlex.split(value)[0]).resolve()
    if not target.is_file():
        raise RequirementsError(f"{line.where()}: included file {target} does not exist")
    return target


def walk(path: Path, stack: tuple[Path, ...] = ()):
    """Yield ("line", Line) for every logical line of ``path`` and its includes, in order, with
    ("include", Line) before an included file's lines; raise RequirementsError on what is refused."""
    path = path.resolve()
    if path in stack:
        raise RequirementsError(f"{stack[-1]}: includes {path}, which includes it again")
    for line in logical_lines(path):
        if not line.text:
            yield "text", line
            continue
        if line.text.startswith("-"):
            option, value = option_of(line.text)
            if option in REFUSED:
                raise RequirementsError(f"{line.where()}: {line.text!r}: {REFUSED[option]}")
            if option in INCLUDE:
                yield "include", line
                yield from walk(include_path(line, value), (*stack, path))
            elif option in INDEX_OPTIONS:
                yield "index", line
            else:
                yield "text", line
            continue
        requirement_of(line)
        yield "requirement", line


def flatten(path: Path) -> list[str]:
    """The file as the wheelhouse's requirements.txt holds it: every line as written, an include
    as a comment followed by the included lines, index options left out."""
    out = []
    for kind, line in walk(path):
        if kind == "include":
            out.append(f"# {line.text} ({line.where()}):")
        elif kind != "index":
            out.extend(line.physical)
    return out


def requirements(path: Path) -> list[Line]:
    return [line for kind, line in walk(path) if kind == "requirement"]


def uses_hashes(path: Path) -> bool:
    return any("--hash" in line.text for line in requirements(path))


def target_environment(version: str) -> dict[str, str]:
    """Marker values of the targets: CPython ``version`` on x86_64 Linux, whatever the controller."""
    env = default_environment()
    env.update(python_full_version=version, implementation_version=version,
               python_version=".".join(version.split(".")[:2]), implementation_name="cpython",
               platform_python_implementation="CPython", os_name="posix", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64")
    return env


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(zf.read(name).decode())
    return [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]


def applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras)


def missing(wheelhouse: Path, version: str, seeds: list[Requirement]) -> list[str]:
    """What the target needs and ``wheelhouse`` lacks: a requirement the seeds pin (a requirements
    file's line for this name) as the seeds say, any other as the first wheel that needs it says."""
    wheels = {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in wheelhouse.glob("*.whl")}
    env = target_environment(version)
    todo = [seed for seed in seeds if applies(seed, env, {""})]
    pinned = {canonicalize_name(seed.name): f"{seed.name}{seed.specifier}" for seed in todo if seed.specifier}
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
            lacking[name] = pinned.get(name, f"{req.name}{req.specifier}")
            continue
        extras = {""} | set(req.extras)
        todo.extend(dep for dep in wheel_requirements(wheels[name]) if applies(dep, env, extras))
    return sorted(lacking.values())


def pins(wheelhouse: Path, names: list[str], hashes: bool = False) -> list[str]:
    wanted = {canonicalize_name(Requirement(n).name) for n in names}
    lines = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if name in wanted:
            digest = f" --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" if hashes else ""
            lines.append(f"{name}=={version}{digest}")
    return sorted(lines)


def spec(wheel: Path) -> str:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return f"{name}=={version}"


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "--flatten":
            lines = flatten(Path(argv[1]))
        elif argv[0] == "--uses-hashes":
            return 0 if uses_hashes(Path(argv[1])) else 1
        elif argv[0] == "--pin":
            hashes = argv[1] == "--hashes"
            rest = argv[2:] if hashes else argv[1:]
            lines = pins(Path(rest[0]), rest[1:], hashes)
        elif argv[0] == "--spec":
            lines = [spec(Path(argv[1]))]
        else:
            house, target = Path(argv[0]), argv[1]
            seeds = []
            for arg in argv[2:]:
                if Path(arg).is_file():
                    seeds += [requirement_of(line) for line in requirements(Path(arg))]
                else:
                    seeds.append(Requirement(arg))
            lines = missing(house, target, seeds)
    except RequirementsError as exc:
        print(f"wheelhouse: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
