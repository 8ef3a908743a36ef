"""The private segment: one Linux bridge per lab, one tap per VM.

The bridge gets no IP address and IPv6 is switched off on it and its taps, so
the host itself is not a member of the segment: only the lab's VMs talk on it.
Nothing here listens on any socket.
"""

import subprocess
from pathlib import Path

from .paths import LabPaths


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _no_ipv6(dev: str) -> None:
    knob = Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
    if knob.exists():
        knob.write_text("1\n")


def links() -> list[str]:
    out = _ip("-o", "link", "show").stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()]


def create(paths: LabPaths, count: int) -> list[str]:
    bridge = paths.bridge
    _ip("link", "add", bridge, "type", "bridge")
    _no_ipv6(bridge)
    _ip("link", "set", bridge, "up")
    taps = []
    for index in range(count):
        tap = paths.tap(index)
        _ip("tuntap", "add", "dev", tap, "mode", "tap")
        _no_ipv6(tap)
        _ip("link", "set", tap, "master", bridge, "up")
        taps.append(tap)
    return taps


def remove(paths: LabPaths) -> list[str]:
    """Delete this lab's taps and bridge, whatever run created them."""
    removed = []
    for dev in links():
        if dev.startswith(paths.tap_prefix()) or dev == paths.bridge:
            _ip("link", "del", dev, check=False)
            removed.append(dev)
    return removed
