"""``labctl up|down|status|instance-config|releases|images|hosts`` — the launcher's command line.

Needs root (tap devices, bridge) and PyYAML (run it with the repo's .venv).
"""

import argparse
import json
import os
import sys
from pathlib import Path

from . import images, lab, outputs, topology
from .paths import REPO, LabPaths

DEFAULT_SCENARIO = REPO / "molecule" / "default" / "molecule.yml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "instance-config", "releases", "images", "hosts"],
                        help="releases: the Debian releases the scenario boots, one a line; images: build (or "
                             "find cached) the image of each and print RELEASE=DIR lines for up's --image-dir; "
                             "hosts: NAME ADDRESS of each machine (--group: of that inventory group), one a line")
    parser.add_argument("--name", default=os.environ.get("LAB_NAME", "lab"), help="lab name (default: lab)")
    parser.add_argument("--molecule-file", type=Path, default=DEFAULT_SCENARIO,
                        help="scenario whose configuration, merged over .config/molecule/config.yml, describes the "
                             "machines (default: molecule/default/molecule.yml, the lab's own topology)")
    parser.add_argument("--image-dir", action="append", default=[], metavar="[RELEASE=]DIR",
                        help="output of lab/build-image.sh (needed by up); once per Debian release the "
                             "scenario's platforms boot (platform key lab_release, default $LAB_RELEASE or bookworm)")
    parser.add_argument("--group", help="hosts: only the machines of this inventory group")
    parser.add_argument("--user", default=os.environ.get("LAB_USER", "debian"))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("LAB_BOOT_TIMEOUT", "900")))
    args = parser.parse_args(argv)
    paths = LabPaths(args.name)

    if args.command == "down":
        lab.down(paths)
        return 0
    if args.command == "releases":
        print("\n".join(topology.load(args.molecule_file).releases))
        return 0
    if args.command == "hosts":
        machines = topology.load(args.molecule_file).machines
        print("\n".join(f"{m.name} {m.address}" for m in machines if args.group in (None, *m.groups)))
        return 0
    if args.command == "images":
        built = images.build(topology.load(args.molecule_file).releases)
        print("\n".join(f"{release}={directory}" for release, directory in built.items()))
        return 0
    if args.command == "up":
        if not args.image_dir:
            parser.error("up needs --image-dir")
        dirs = {r: d.resolve() for r, d in images.parse(args.image_dir, topology.default_release()).items()}
        state = lab.up(paths, topology.load(args.molecule_file), dirs, args.user, args.timeout)
        print(outputs.summary(state), file=sys.stderr)
        return 0
    if not paths.state.exists():
        print(f"lab '{args.name}' is not up", file=sys.stderr)
        return 1
    state = json.loads(paths.state.read_text())
    if args.command == "status":
        print(outputs.summary(state))
    else:
        print(json.dumps(outputs.instance_config(state)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
