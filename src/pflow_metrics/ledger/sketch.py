"""Duration sketches (DDSketch log buckets): a percentile read from one is within ACCURACY (1%)
of the exact value, and sketches of days merge into sketches of months.

A value v > 0 falls in bucket ceil(log_gamma(v)); every value of bucket i lies in
(gamma^(i-1), gamma^i], whose point 2 * gamma^i / (gamma + 1) is within ACCURACY of all of them.

Roll-up rows store a sketch as JSON, {"<bucket index>": count}, the form existing ledgers hold.
A Sketch keeps its counts in that form too, so that reading the sketches of a year of roll-up
rows parses no bucket index (only `quantile` does, once per bucket).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
LOG_GAMMA = math.log(GAMMA)
SMALLEST_MS = 0.001  # smaller durations (and 0) count as this: log needs a positive value


@dataclass
class Sketch:
    """Counts of durations (ms) per log bucket."""

    counts: dict[str, int] = field(default_factory=dict)  # bucket index as text -> count (> 0)

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> Sketch:
        sketch = cls()
        for value in values_ms:
            sketch.add(value)
        return sketch

    @classmethod
    def from_json(cls, stored: Mapping[str, int] | None) -> Sketch:
        """A sketch from its stored form (None, as a roll-up column may hold, is empty)."""
        return cls(dict(stored or {}))

    def to_json(self) -> dict[str, int]:
        """The stored form: {"<bucket index>": count}."""
        return dict(self.counts)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def add(self, value_ms: float) -> None:
        bucket = str(math.ceil(math.log(max(value_ms, SMALLEST_MS)) / LOG_GAMMA))
        self.counts[bucket] = self.counts.get(bucket, 0) + 1

    def merge(self, other: Sketch) -> None:
        """Add `other`'s counts to this sketch: the sketch of both sets of values."""
        for bucket, count in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + count

    def quantile(self, fraction: float) -> float | None:
        """The value at `fraction` (nearest rank), within ACCURACY of the exact one; None when
        the sketch is empty."""
        total = self.count
        if not total:
            return None
        rank = round(fraction * (total - 1))
        seen = 0
        for bucket in sorted(self.counts, key=int):
            seen += self.counts[bucket]
            if seen > rank:
                break
        return 2 * GAMMA ** int(bucket) / (GAMMA + 1)
