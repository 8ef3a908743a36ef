"""Which base image each VM boots.

``lab/build-image.sh`` builds one image per Debian release (``LAB_RELEASE``) into
``<cache>/<release>-<flavour>-<hash>/``. A scenario whose platforms name more than one release
(``lab_release: trixie`` on a platform) needs one image per release: ``labctl images`` builds (or
finds cached) each one and prints ``RELEASE=DIR`` lines, and ``labctl up`` takes them as repeated
``--image-dir`` arguments. A bare ``--image-dir DIR`` belongs to the release its name starts
with when it is a directory the builder named, else to the default release.
"""

import os
import re
import subprocess
from pathlib import Path

from .paths import REPO
from .topology import Topology

BUILD_SCRIPT = REPO / "lab" / "build-image.sh"
# <release>-<flavour>-<12 hex digits of the recipe hash>, as lab/build-image.sh names its output.
BUILDER_NAME = re.compile(r"(?P<release>[a-z][a-z0-9-]*?)-(?:preloaded|bare)-[0-9a-f]{12}")


def release_of(directory: Path, default: str) -> str:
    named = BUILDER_NAME.fullmatch(directory.name)
    return named["release"] if named else default


def parse(values: list[str], default: str) -> dict[str, Path]:
    """``--image-dir`` values (``RELEASE=DIR`` or ``DIR``) as {release: directory}."""
    images: dict[str, Path] = {}
    for value in values:
        release, sep, directory = value.partition("=")
        if not sep:
            directory = value
            release = release_of(Path(value.rstrip("/")), default)
        if release in images:
            raise SystemExit(f"labctl: two --image-dir values for {release}: {images[release]} and {directory}")
        images[release] = Path(directory)
    return images


def for_machines(topology: Topology, images: dict[str, Path]) -> dict[str, Path]:
    """The image directory of every machine, by name; every release the topology boots needs one."""
    missing = [r for r in topology.releases if r not in images]
    if missing:
        users = ", ".join(m.name for m in topology.machines if m.release in missing)
        raise SystemExit(f"labctl up: no image for {', '.join(missing)} (platforms {users}); pass "
                         f"--image-dir RELEASE=DIR for each, e.g. from `labctl images --molecule-file ...`")
    return {m.name: images[m.release] for m in topology.machines}


def build(releases: list[str], script: Path | None = None) -> dict[str, Path]:
    """Run the image builder once per release (its progress goes to stderr); {release: directory}."""
    script = script or BUILD_SCRIPT
    images = {}
    for release in releases:
        result = subprocess.run([str(script)], env=dict(os.environ, LAB_RELEASE=release),
                                stdout=subprocess.PIPE, text=True, check=False)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            raise SystemExit(f"labctl images: {script} failed for {release} (exit {result.returncode})")
        images[release] = Path(lines[-1])
    return images
