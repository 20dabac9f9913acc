"""One datapoint's statistics: SampleCount, Sum, Minimum, Maximum and a log histogram for pNN.

The histogram is DDSketch's idea: a value ``v > 0`` falls in bucket ``ceil(log(v) / log(g))``
with ``g = (1 + a) / (1 - a)``, and a bucket answers for its values with ``2 g^i / (g + 1)``,
which is within a relative error ``a`` of every value in it. With ``a = 1 %`` (``ACCURACY``) a
percentile read back is within 1 % of a value the data really holds at that rank (and is
clamped to [Minimum, Maximum]). Negative values use mirrored buckets; values whose magnitude is
under ``1e-9`` share a zero bucket. Microsecond latencies from 1 µs to an hour span about 1,100
buckets; a datapoint stores only those used, as compact JSON. Datapoints merge by adding counts,
so a percentile over an hour is as exact as one over a minute.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

#: Relative accuracy of a percentile (see the module's docstring).
ACCURACY = 0.01
_GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
#: Magnitudes below this count as zero.
_TINY = 1e-9
_ZERO = "z"


def bucket(value: float) -> str:
    """The histogram key of ``value``: ``"z"``, ``"<i>"`` (positive) or ``"n<i>"`` (negative;
    ``i`` itself is negative for magnitudes under 1)."""
    magnitude = abs(value)
    if magnitude < _TINY:
        return _ZERO
    index = math.ceil(math.log(magnitude) / _LOG_GAMMA)
    return str(index) if value > 0 else f"n{index}"


def representative(key: str) -> float:
    """The value a bucket answers for: within ``ACCURACY`` of every value in it."""
    if key == _ZERO:
        return 0.0
    negative = key.startswith("n")
    index = int(key[1:] if negative else key)
    value = 2 * _GAMMA**index / (_GAMMA + 1)
    return -value if negative else value


@dataclass(slots=True)
class Stats:
    """What one datapoint keeps; ``hist`` may count fewer samples than ``count`` (data
    published as a statistic set has no values to put in it)."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    hist: dict[str, float] = field(default_factory=dict)

    def add(self, value: float, weight: float = 1.0) -> None:
        self.count += weight
        self.total += value * weight
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        key = bucket(value)
        self.hist[key] = self.hist.get(key, 0.0) + weight

    def add_values(self, values: list[float]) -> None:
        """Many values at once: the flusher's path (the histogram keys once per distinct value)."""
        if not values:
            return
        self.count += len(values)
        self.total += math.fsum(values)
        self.minimum = min(self.minimum, min(values))
        self.maximum = max(self.maximum, max(values))
        hist = self.hist
        for value, n in Counter(values).items():
            key = bucket(value)
            hist[key] = hist.get(key, 0.0) + n

    def add_set(self, count: float, total: float, minimum: float, maximum: float) -> None:
        """A statistic set (PutMetricData's ``StatisticValues``): no values for percentiles."""
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)

    def merge(self, other: Stats) -> None:
        self.add_set(other.count, other.total, other.minimum, other.maximum)
        for key, n in other.hist.items():
            self.hist[key] = self.hist.get(key, 0.0) + n

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100), or None when some samples have no values."""
        covered = sum(self.hist.values())
        if covered <= 0 or covered + 1e-9 < self.count:
            return None
        rank = p / 100 * covered
        seen = 0.0
        for key in sorted(self.hist, key=representative):
            seen += self.hist[key]
            if seen >= rank - 1e-9:
                return min(max(representative(key), self.minimum), self.maximum)
        return self.maximum

    def hist_json(self) -> str:
        return json.dumps(self.hist, separators=(",", ":"))

    @classmethod
    def from_row(
        cls, count: float, total: float, minimum: float, maximum: float, hist: str
    ) -> Stats:
        return cls(count, total, minimum, maximum, json.loads(hist) if hist else {})


def merge_hist(left: str | None, right: str | None) -> str:
    """Two stored histograms as one (registered in SQLite for the flush's upsert)."""
    out: dict[str, float] = json.loads(left) if left else {}
    for key, n in (json.loads(right) if right else {}).items():
        out[key] = out.get(key, 0.0) + n
    return json.dumps(out, separators=(",", ":"))
