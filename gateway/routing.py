"""Which instance of a variant takes a request (SageMaker's ``RoutingConfig``, docs/instances.md).

- ``LEAST_OUTSTANDING_REQUESTS`` (the default): the instance with the fewest requests in flight,
  ties broken at random, so a slow request never holds up the next ones behind it while another
  instance is idle.
- ``RANDOM``: any instance, uniformly.
- A MultiModel request (a ``TargetModel``) goes where its model is: consistent hashing with
  bounded loads, as ``tandem haproxy`` configures HAProxy, inside the gateway. Each model has an
  order of instances (its walk round a hash ring); it goes to the first of those that holds it
  (loaded or loading), else to the first in its order, so a model is loaded once. An instance
  at or over ``BALANCE_FACTOR`` times the mean load in flight is over its share: a model that
  is hot there itself (``HOT`` requests of its own in flight) spills to the next instance in its
  order, which loads it too, so a hot model ends up on several instances; any other stays on
  its one (a load costs more than a short wait). An instance added or removed takes or gives
  back only the ring's arcs next to its own points: about 1/N of the models move.

Pure and cheap: no I/O, no clock, nothing allocated per request but one hash of a new target.
A ``Router`` is built once per list of instances (the caller replaces the list whole when the
count changes) and precomputes each ring point's candidates.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from pipelines.spec import RoutingStrategy

#: An instance takes a model's request only below this many times the mean load in flight
#: (HAProxy's ``hash-balance-factor 150``, the one ``gateway.ops.haproxy`` writes).
BALANCE_FACTOR = 1.5
#: Points per instance on the ring: more points, more even shares of the models.
POINTS = 100
#: Instances a model's walk may visit (its home, then where it spills), at most.
CANDIDATES = 8
#: A model with at least this many of its own requests in flight on a holder over its share
#: is hot: it spills. With fewer it is answered soon where it is, and a second copy would cost
#: a load and memory: in ``benchmarks/instances.py``, spilling at 1 made 1.01-1.03 copies per
#: model and lowered the hit ratio by half a point to 0.993-0.999 of one instance with three
#: times the memory; at 3, 1.003 copies and 0.999-1.002, with a lower mean latency too.
HOT = 3
#: Targets whose ring position is remembered (a hash per request only for new ones).
REMEMBERED = 4096


class Busy(Protocol):
    """An instance as the router sees it: how many requests it is answering now, and whether
    it can answer (a restarting instance fails fast, so its count stays low: it must not draw
    the traffic for that)."""

    @property
    def inflight(self) -> int: ...

    @property
    def healthy(self) -> bool: ...


T = TypeVar("T", bound=Busy)
#: ``in_use(instance, target)``: how many of ``target``'s requests ``instance`` is answering now,
#: or None when the model is neither loaded nor being loaded there.
InUse = Callable[[T, str], "int | None"]


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Router(Generic[T]):
    """Chooses among ``instances`` (kept as given: ``router.instances is list`` tells a caller
    whether the router is still the one for its list)."""

    __slots__ = (
        "_homes",
        "_pick",
        "_points",
        "_random",
        "_walks",
        "factor",
        "instances",
        "strategy",
    )

    def __init__(
        self,
        instances: Sequence[T],
        strategy: RoutingStrategy = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS,
        keys: Sequence[str] | None = None,
        *,
        factor: float = BALANCE_FACTOR,
        points: int = POINTS,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """``keys`` name the instances on the ring (stable across count changes: an instance
        keeps its models when others come and go); by default their positions."""
        if not instances:
            raise ValueError("a router needs at least one instance")
        keys = [str(i) for i in range(len(instances))] if keys is None else list(keys)
        if len(keys) != len(instances) or len(set(keys)) != len(keys):
            raise ValueError("one distinct key per instance")
        self.instances = instances
        self.strategy = strategy
        self.factor = factor
        self._random = rng
        #: Resolved once: comparing enum members per request is not free.
        self._pick = self.uniform if strategy is RoutingStrategy.RANDOM else self.least_outstanding
        ring = sorted(
            (stable_hash(f"{key}#{point}"), index)
            for index, key in enumerate(keys)
            for point in range(points)
        )
        self._points = [h for h, _ in ring]
        self._walks = _walks([index for _, index in ring], min(len(keys), CANDIDATES))
        self._homes: dict[str, tuple[int, ...]] = {}

    def choose(self, target: str | None = None, in_use: InUse[T] | None = None) -> T:
        """The instance for one request; ``target`` (a MultiModel request's model) with
        ``in_use`` (where it is loaded, and how busy it is there) routes by model."""
        instances = self.instances
        if len(instances) == 1:
            return instances[0]
        if target is not None and in_use is not None:
            chosen = self._by_model(target, in_use)
        else:
            chosen = self._pick()
        if chosen.healthy:
            return chosen
        # Rare: the least busy of those that can answer, else the one chosen (it will say why).
        healthy = [i for i in instances if i.healthy]
        return self.least_outstanding(healthy) if healthy else chosen

    def uniform(self) -> T:
        """An instance drawn uniformly."""
        return self.instances[int(self._random() * len(self.instances))]

    def least_outstanding(self, among: Sequence[T] | None = None) -> T:
        """The instance (of ``among``, by default all) with the fewest requests in flight;
        among equals, one at random."""
        best: T | None = None
        low = ties = 0
        for instance in self.instances if among is None else among:
            load = instance.inflight
            if best is None or load < low:
                best, low, ties = instance, load, 1
            elif load == low:
                ties += 1  # reservoir sampling: each of the k equals is kept with chance 1/k
                if self._random() * ties < 1.0:
                    best = instance
        assert best is not None
        return best

    def walk(self, target: str) -> tuple[int, ...]:
        """The positions of the instances ``target`` may go to, home first."""
        walk = self._homes.get(target)
        if walk is None:
            if len(self._homes) >= REMEMBERED:
                self._homes.clear()
            at = bisect.bisect(self._points, stable_hash(target)) % len(self._points)
            walk = self._homes[target] = self._walks[at]
        return walk

    def _by_model(self, target: str, in_use: InUse[T]) -> T:
        instances = self.instances
        total = 0
        for instance in instances:
            total += instance.inflight
        # Bounded loads: with this request, no instance above factor x the mean (rounded up).
        bound = math.ceil(self.factor * (total + 1) / len(instances))
        holder: T | None = None  # the least busy of the holders, all over the bound
        busy = False  # the model has HOT requests in flight on a holder: it is hot
        spare: T | None = None
        for index in self.walk(target):
            instance = instances[index]
            using = in_use(instance, target)
            if using is None:
                if spare is None and instance.inflight < bound:
                    spare = instance
                continue
            if instance.inflight < bound:
                return instance
            busy = busy or using >= HOT
            if holder is None or instance.inflight < holder.inflight:
                holder = instance
        # Over its share, a holder keeps a cold model (a load costs more than a short wait);
        # a hot one spills to the next instance in its walk, which loads it too.
        if holder is not None and (not busy or spare is None):
            return holder
        if spare is not None:
            return spare
        return self.least_outstanding()  # its walk is all busy (more instances than CANDIDATES)


def _walks(owners: list[int], length: int) -> list[tuple[int, ...]]:
    """For each ring point, the first ``length`` distinct instances met going clockwise."""
    size = len(owners)
    walks: list[tuple[int, ...]] = []
    for start in range(size):
        seen: list[int] = []
        step = start
        while len(seen) < length:
            owner = owners[step % size]
            if owner not in seen:
                seen.append(owner)
            step += 1
        walks.append(tuple(seen))
    return walks
