"""The models with the most traffic lately: what bounded per-model series are made of.

Prometheus breaks under a label per model when there are thousands (kserve#1582), so only the
top K models by invocations in the last window get series of their own; each variant's others
are summed under ``model="other"``. The series so number at most K plus one per variant.
Fed from the drained events (the flusher's thread), read at scrape time: a lock between.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from gateway.usage.ledger import BUCKET, INVOCATIONS, MODEL_S, Split, split_events

OTHER = "other"

Counts = dict[tuple[str, str, str], list[float]]
#: (endpoint, variant, model or "other", invocations, model seconds) over the window.
Sample = tuple[str, str, str, float, float]


class TopModels:
    def __init__(self, k: int, window: float) -> None:
        self.k = k
        self.window = window
        self._lock = threading.Lock()
        self._buckets: deque[tuple[int, Counts]] = deque()
        #: The buckets' counts summed, kept as they come and go (a sample reads it whole).
        self._totals: Counts = {}

    def add(self, events: Iterable[tuple[Any, ...]], split: Split | None = None) -> None:
        """Count the invocations of MultiModel targets among ``events`` (or their ``split``)."""
        invocations, _others = split if split is not None else split_events(events)
        with self._lock:
            for (start, endpoint, variant, model, _component), sums in invocations.items():
                if model is None:
                    continue
                counts = self._bucket(start)
                n, seconds = sums[INVOCATIONS], sums[MODEL_S] / 1e6
                for into in (counts, self._totals):
                    found = into.setdefault((endpoint, variant, model), [0.0, 0.0])
                    found[0] += n
                    found[1] += seconds

    def _bucket(self, start: int) -> Counts:
        """The counts of the bucket that starts at ``start`` (the window's first when older)."""
        if not self._buckets or self._buckets[-1][0] < start:
            self._buckets.append((start, {}))
        for when, counts in reversed(self._buckets):
            if when <= start:
                return counts
        return self._buckets[0][1]

    def top(self, now: float) -> frozenset[tuple[str, str, str]]:
        """The top K models over the window, as ``sample`` ranks them (without ranking the rest:
        what the flusher asks after each batch)."""
        with self._lock:
            self._expire(now)
            found = heapq.nsmallest(
                self.k, self._totals.items(), key=lambda item: (-item[1][0], item[0])
            )
        return frozenset(key for key, _counts in found)

    def _expire(self, now: float) -> None:
        """The buckets older than the window taken out of the totals (under the lock)."""
        totals = self._totals
        while self._buckets and self._buckets[0][0] + BUCKET <= now - self.window:
            _, gone = self._buckets.popleft()
            for key, (n, seconds) in gone.items():
                found = totals[key]
                found[0] -= n
                found[1] -= seconds
                if found[0] <= 0:
                    del totals[key]

    def sample(self, now: float) -> list[Sample]:
        """The top K models' figures over the window, then one ``other`` per variant."""
        with self._lock:
            self._expire(now)
            items = [(key, (n, s)) for key, (n, s) in self._totals.items()]
        ranked = sorted(items, key=lambda item: (-item[1][0], item[0]))
        out: list[Sample] = [(*key, n, s) for key, (n, s) in ranked[: self.k]]
        others: dict[tuple[str, str], list[float]] = {}
        for (endpoint, variant, _model), (n, s) in ranked[self.k :]:
            found = others.setdefault((endpoint, variant), [0.0, 0.0])
            found[0] += n
            found[1] += s
        out += [(e, v, OTHER, n, s) for (e, v), (n, s) in others.items()]
        return out
