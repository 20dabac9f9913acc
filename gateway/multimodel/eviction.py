"""Which loaded models leave memory first: least recently used, or by value (docs/multimodel.md).

Pure bookkeeping, no I/O and no clock of its own, so it is unit-tested alone and the manager
stays the one place that loads and unloads. A policy hears of every hit, load and unload, and
answers ``victims``: the loaded models to unload, in order, until ``need`` bytes are free.

``value`` is GDSF (Greedy-Dual-Size-Frequency, Cherkasova 1998) with two additions:

- a model's priority is ``clock + frequency * cost / size``: ``cost`` is its measured load time
  (what evicting it costs when it comes back), ``size`` its memory; ``clock`` rises to the
  priority of each evicted model, so a model not used for a while falls behind newer ones
  (aging: yesterday's hot model can leave);
- frequency is a count-min-free sketch of recent requests, every target counted whether loaded or
  not, halved every ``window`` requests (TinyLFU's aging). It survives eviction, so a model that
  comes back often comes back with its history;
- protection (TinyLFU-style admission turned round): a model requested once since it was loaded,
  whose recorded frequency is 1, is evicted before any model used more than once. A long run of
  one-time models then cycles through the room the one-time models take, and the hot set stays.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

PolicyName = Literal["lru", "value"]
#: Requests between two halvings of every frequency (aging); a multiple of what memory holds.
DEFAULT_WINDOW = 10_000
#: Load seconds assumed for a model never loaded here (its first load measures it).
DEFAULT_COST = 0.02


class EvictionPolicy(Protocol):
    """What the manager tells a policy and asks of it; targets only, no model objects."""

    def on_hit(self, target: str) -> None:
        """A request for a loaded model (or one that waited for its load)."""

    def on_miss(self, target: str) -> None:
        """A request for a model not loaded: counted before its load starts."""

    def on_load(self, target: str, size: int, cost: float) -> None:
        """``target`` is loaded: ``size`` bytes it added, ``cost`` seconds its load took."""

    def on_unload(self, target: str) -> None:
        """``target`` left memory (evicted, lost in a restart, or unloaded on request)."""

    def victims(self, need: int, candidates: set[str]) -> list[str]:
        """Models of ``candidates`` (loaded, unpinned, idle) to unload, first first, until
        their sizes add up to ``need``; fewer when the candidates are not enough."""


class Lru:
    """Least recently used first (Tandem's rule before issue 29; kept for comparison)."""

    def __init__(self) -> None:
        self._order: OrderedDict[str, int] = OrderedDict()  # least recently used first

    def on_hit(self, target: str) -> None:
        if target in self._order:
            self._order.move_to_end(target)

    def on_miss(self, target: str) -> None:
        pass

    def on_load(self, target: str, size: int, cost: float) -> None:
        self._order[target] = size
        self._order.move_to_end(target)

    def on_unload(self, target: str) -> None:
        self._order.pop(target, None)

    def victims(self, need: int, candidates: set[str]) -> list[str]:
        return _take(((t, s) for t, s in self._order.items() if t in candidates), need)


@dataclass
class _Resident:
    size: int
    cost: float
    priority: float
    #: Requests since it was loaded (its load's own request included).
    uses: int


class ValuePolicy:
    """GDSF with frequency aging and protection of models used more than once (see above)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = max(window, 1)
        self.clock = 0.0
        self._freq: dict[str, float] = {}
        self._resident: dict[str, _Resident] = {}
        self._costs: dict[str, float] = {}
        self._requests = 0

    def frequency(self, target: str) -> float:
        return self._freq.get(target, 0.0)

    def priority(self, target: str) -> float | None:
        resident = self._resident.get(target)
        return None if resident is None else resident.priority

    def on_hit(self, target: str) -> None:
        self._count(target)
        resident = self._resident.get(target)
        if resident is not None:
            resident.uses += 1
            resident.priority = self._value(target, resident.size, resident.cost)

    def on_miss(self, target: str) -> None:
        self._count(target)

    def on_load(self, target: str, size: int, cost: float) -> None:
        self._costs[target] = cost if cost > 0 else self._costs.get(target, DEFAULT_COST)
        cost = self._costs[target]
        self._resident[target] = _Resident(size, cost, self._value(target, size, cost), uses=1)

    def on_unload(self, target: str) -> None:
        self._resident.pop(target, None)

    def victims(self, need: int, candidates: set[str]) -> list[str]:
        order = sorted(  # stable: ties go in load order, oldest first
            (t for t in self._resident if t in candidates),
            key=lambda t: (self._protected(t), self._resident[t].priority),
        )
        chosen = _take(((t, self._resident[t].size) for t in order), need)
        if chosen:  # the clock rises to the last evicted model's priority (GDSF's aging)
            self.clock = max(self.clock, self._resident[chosen[-1]].priority)
        return chosen

    def _protected(self, target: str) -> bool:
        """Used more than once, now or over its history: evicted only after one-time models."""
        return self._resident[target].uses > 1 or self.frequency(target) > 1.0

    def _value(self, target: str, size: int, cost: float) -> float:
        return self.clock + self.frequency(target) * cost * 2**20 / max(size, 1)

    def _count(self, target: str) -> None:
        self._freq[target] = self._freq.get(target, 0.0) + 1.0
        self._requests += 1
        if self._requests >= self.window:
            self._requests = 0
            self._freq = {t: f / 2 for t, f in self._freq.items() if f >= 1.0}


def make_policy(name: PolicyName, window: int = DEFAULT_WINDOW) -> EvictionPolicy:
    return Lru() if name == "lru" else ValuePolicy(window)


def _take(ordered: Iterable[tuple[str, int]], need: int) -> list[str]:
    """Targets from ``ordered`` (target, size) pairs until their sizes reach ``need``."""
    chosen: list[str] = []
    freed = 0
    for target, size in ordered:
        if freed >= need:
            break
        chosen.append(target)
        freed += size
    return chosen
