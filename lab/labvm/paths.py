"""Where a lab keeps its files; every path derives from LAB_CACHE and the lab name."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    return Path(os.environ.get("LAB_CACHE", REPO / ".cache" / "lab"))


def short_name(name: str) -> str:
    """Lab name squeezed into what fits a Linux interface name (15 chars in total)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())[:8] or "lab"


@dataclass(frozen=True)
class LabPaths:
    name: str

    @property
    def run(self) -> Path:
        return cache_dir() / "run" / self.name

    @property
    def logs(self) -> Path:
        return cache_dir() / "logs" / self.name

    @property
    def up_pid(self) -> Path:
        """Outside the run directory, which `down` deletes."""
        return cache_dir() / "run" / f"{self.name}.up.pid"

    @property
    def key(self) -> Path:
        return self.run / "id_ed25519"

    @property
    def state(self) -> Path:
        return self.run / "state.json"

    @property
    def inventory(self) -> Path:
        return self.run / "inventory.yml"

    @property
    def bridge(self) -> str:
        return f"lb-{short_name(self.name)}"

    def tap(self, index: int) -> str:
        return f"lt-{short_name(self.name)}-{index}"

    def tap_prefix(self) -> str:
        return f"lt-{short_name(self.name)}-"
