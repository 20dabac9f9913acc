"""The eviction policies on their own: a cache of fixed room replayed over request streams.

Loads are counted, never timed: the scan case is the issue's (a hot set used all the time while a
long run of one-time models passes through), and LRU is run beside ``value`` on the same stream so
that each test shows the case bites (LRU reloads) as well as that ``value`` holds.
"""

from __future__ import annotations

import random
from collections import Counter

from gateway.multimodel.eviction import EvictionPolicy, Lru, ValuePolicy, make_policy

MB = 2**20


class Cache:
    """``room`` bytes of models that asks ``policy`` for victims, counting loads per target."""

    def __init__(self, policy: EvictionPolicy, room: int) -> None:
        self.policy, self.room = policy, room
        self.loaded: dict[str, int] = {}

    def run(
        self,
        stream: list[str],
        size: dict[str, int] | None = None,
        cost: dict[str, float] | None = None,
    ) -> Counter[str]:
        loads: Counter[str] = Counter()
        for target in stream:
            if target in self.loaded:
                self.policy.on_hit(target)
                continue
            self.policy.on_miss(target)
            need = (size or {}).get(target, MB)
            short = sum(self.loaded.values()) + need - self.room
            if short > 0:
                victims = self.policy.victims(short, set(self.loaded))
                assert victims, "room must be found among idle models"
                for victim in victims:
                    del self.loaded[victim]
                    self.policy.on_unload(victim)
                assert sum(self.loaded.values()) + need <= self.room
            self.loaded[target] = need
            loads[target] += 1
            self.policy.on_load(target, need, (cost or {}).get(target, 0.02))
        return loads


def replay(
    policy: EvictionPolicy, stream: list[str], room: int, size: dict[str, int] | None = None
) -> Counter[str]:
    return Cache(policy, room).run(stream, size)


def scan_stream(hot: list[str], one_time: int) -> list[str]:
    """The hot set twice, then every one-time model followed by one hot model in turn."""
    stream = hot * 2
    for i in range(one_time):
        stream += [f"once-{i}", hot[i % len(hot)]]
    return stream


def test_a_scan_of_one_time_models_loads_the_hot_set_once_under_value_not_under_lru() -> None:
    hot = [f"hot-{i}" for i in range(4)]
    stream = scan_stream(hot, one_time=500)
    room = 6 * MB  # the hot set and two more
    value = replay(ValuePolicy(), stream, room)
    lru = replay(Lru(), stream, room)
    assert [value[h] for h in hot] == [1, 1, 1, 1]
    assert sum(value[f"once-{i}"] for i in range(500)) == 500
    assert min(lru[h] for h in hot) > 50  # the case bites LRU: every pass evicts a hot model


def test_a_scan_longer_than_the_aging_window_still_leaves_the_hot_set() -> None:
    hot = [f"hot-{i}" for i in range(3)]
    stream = scan_stream(hot, one_time=3000)
    loads = replay(ValuePolicy(window=200), stream, 5 * MB)
    assert [loads[h] for h in hot] == [1, 1, 1]


def test_yesterdays_hot_model_leaves_for_todays() -> None:
    """Aging: counts halve every window, so a new hot set takes over from an old one."""
    policy = ValuePolicy(window=100)
    cache = Cache(policy, 3 * MB)
    cache.run(["old-0", "old-1"] * 200)
    switching = cache.run(["new-0", "new-1"] * 200)
    assert switching["new-0"] + switching["new-1"] < 100  # a few reloads while counts age
    assert set(cache.loaded) >= {"new-0", "new-1"}
    assert policy.frequency("old-0") < policy.frequency("new-0")
    assert cache.run(["new-0", "new-1"] * 100) == Counter()
    # The old models are one-time guests now: they come by without pushing the new ones out.
    assert cache.run(["old-0", "new-0", "old-1", "new-1"] * 10)["new-0"] == 0


def test_with_equal_use_the_larger_model_and_the_cheaper_load_leave_first() -> None:
    policy = ValuePolicy()
    for target, size, seconds in (("big", 10 * MB, 0.02), ("small", MB, 0.02)):
        for _ in range(3):
            policy.on_miss(target)
        policy.on_load(target, size, seconds)
    assert policy.victims(1, {"big", "small"}) == ["big"]
    policy = ValuePolicy()
    for target, seconds in (("slow", 0.2), ("quick", 0.01)):
        for _ in range(3):
            policy.on_miss(target)
        policy.on_load(target, MB, seconds)
    assert policy.victims(1, {"slow", "quick"}) == ["quick"]


def test_victims_are_only_the_candidates_and_enough_of_them() -> None:
    for policy in (make_policy("lru"), make_policy("value")):
        for target in ("a", "b", "c"):
            policy.on_miss(target)
            policy.on_load(target, MB, 0.02)
        assert policy.victims(2 * MB, {"a", "c"}) in (["a", "c"], ["c", "a"])
        assert policy.victims(5 * MB, {"b"}) == ["b"]
        assert policy.victims(0, {"a", "b", "c"}) == []


def test_lru_evicts_the_least_recently_used() -> None:
    policy = Lru()
    for target in ("a", "b", "c"):
        policy.on_load(target, MB, 0.02)
    policy.on_hit("a")
    assert policy.victims(1, {"a", "b", "c"}) == ["b"]


def test_on_a_zipf_stream_value_hits_more_often_than_lru_in_the_same_room() -> None:
    """The benchmark's shape: 1,100 models (a tenth ten times larger), room for a tenth."""
    rng = random.Random(3)
    targets = [f"m-{i}" for i in range(1100)]
    size = {t: (10 if i % 11 == 0 else 1) * MB for i, t in enumerate(targets)}
    order = targets[:]
    rng.shuffle(order)
    weights = [1 / r**1.1 for r in range(1, len(order) + 1)]
    stream = rng.choices(order, weights=weights, k=20_000)
    room = sum(size.values()) // 10
    hits = {}
    for name in ("lru", "value"):
        loads = replay(make_policy(name), stream, room, size)
        hits[name] = 1 - sum(loads.values()) / len(stream)
    assert hits["value"] > hits["lru"] + 0.05, hits
