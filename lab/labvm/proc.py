"""Finding this lab's processes by their command line (pidfiles alone miss a crashed run's)."""

from collections.abc import Callable
from pathlib import Path


def matching(match: Callable[[list[bytes]], bool]) -> list[int]:
    """PIDs of processes whose argv (a list of bytes) satisfies ``match``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] and match(argv):
            found.append(int(entry.name))
    return found
