"""Which loaded models leave memory first: least recently used, or by value (docs/multimodel.md).

Pure bookkeeping, no I/O and no clock of its own, so it is unit-tested alone and the manager
stays the one place that loads and unloads. A policy hears of every hit, miss, load and unload,
and answers ``victims``: the loaded models to unload, in order, until ``need`` bytes are free.

``value`` keeps the models whose loads save the most load time per byte of memory:

- a model's priority is ``frequency * cost / size`` (the priority of GDSF, Cherkasova 1998):
  ``cost`` is its measured load time (the container's CPU seconds where it says them: what
  evicting it costs when it comes back), ``size`` the memory it added; the lowest priority
  leaves first, ties by least recent use;
- frequency counts the recent requests of every target, loaded or not, and every count is halved
  each ``window`` requests (TinyLFU's reset; counts under one are dropped, which bounds the
  table). Counts survive eviction, so a model that comes back often comes back with its history;
  they are read when victims are chosen, so an idle model's priority falls as its count halves
  (aging: yesterday's hot model can leave). GDSF's inflation clock is left out: the halving ages
  already, and on the benchmark's Zipf stream the clock cost about four points of hit ratio;
- protection (TinyLFU's admission turned round, since a requested model must be loaded): a model
  requested only once, since its load and in its recorded history, leaves before any model used
  more than once, whatever its size. A long run of one-time models then cycles through the room
  the one-time models take, and the hot set stays.
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
    #: The policy's request count at its load or last use (ties go to the least recent).
    used: int
    #: Requests since it was loaded (its load's own request included).
    uses: int


class ValuePolicy:
    """Frequency (aged) times load time per byte, models used more than once protected."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = max(window, 1)
        self._freq: dict[str, float] = {}
        self._resident: dict[str, _Resident] = {}
        self._costs: dict[str, float] = {}
        self._requests = 0  # since the last halving
        self._tick = 0  # every request

    def frequency(self, target: str) -> float:
        return self._freq.get(target, 0.0)

    def priority(self, target: str) -> float:
        """Load seconds saved per MiB kept: ``frequency * cost / size``, read when victims are
        chosen, so that halved counts lower idle models too."""
        resident = self._resident[target]
        return self.frequency(target) * resident.cost * 2**20 / resident.size

    def on_hit(self, target: str) -> None:
        self._count(target)
        resident = self._resident.get(target)
        if resident is not None:
            resident.uses += 1
            resident.used = self._tick

    def on_miss(self, target: str) -> None:
        self._count(target)

    def on_load(self, target: str, size: int, cost: float) -> None:
        self._costs[target] = cost if cost > 0 else self._costs.get(target, DEFAULT_COST)
        self._resident[target] = _Resident(max(size, 1), self._costs[target], self._tick, 1)

    def on_unload(self, target: str) -> None:
        self._resident.pop(target, None)

    def victims(self, need: int, candidates: set[str]) -> list[str]:
        order = sorted(
            (t for t in self._resident if t in candidates),
            key=lambda t: (self._protected(t), self.priority(t), self._resident[t].used),
        )
        return _take(((t, self._resident[t].size) for t in order), need)

    def _protected(self, target: str) -> bool:
        """Used more than once, now or over its history: evicted only after one-time models."""
        return self._resident[target].uses > 1 or self.frequency(target) > 1.0

    def _count(self, target: str) -> None:
        self._freq[target] = self._freq.get(target, 0.0) + 1.0
        self._tick += 1
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
