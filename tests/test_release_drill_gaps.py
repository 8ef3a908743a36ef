"""The release drill's consumer-gap measure (molecule/shared/release.py): it decides whether a
release left a queue without a consumer, so it must see a real gap and only a real one."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "shared"))

from release import consumer_gaps  # noqa: E402


def sample(t: float, *queues: str, nodes=("w1",)) -> dict:
    return {"t": t, "consumed": sorted(queues), "nodes": list(nodes)}


def test_no_gap_whatever_the_spacing_of_the_samples():
    samples = [sample(t * 1.6, "default", "long") for t in range(20)]
    assert consumer_gaps(samples, ["default", "long"]) == (0.0, {"default": 0.0, "long": 0.0})


def test_a_gap_lasts_from_the_first_miss_to_the_next_sighting():
    samples = [sample(0, "long"), sample(1), sample(2), sample(3.5, "long"), sample(4, "long")]
    assert consumer_gaps(samples, ["long"]) == (2.5, {"long": 2.5})


def test_a_sample_nobody_answered_is_missing_data_not_a_gap():
    samples = [sample(0, "long"), sample(1, nodes=()), sample(2, "long")]
    assert consumer_gaps(samples, ["long"])[0] == 0.0


def test_a_queue_never_seen_again_counts_until_the_last_sample():
    samples = [sample(0, "long", "high"), sample(1, "high"), sample(7, "high")]
    assert consumer_gaps(samples, ["long", "high"]) == (6.0, {"long": 6.0, "high": 0.0})
