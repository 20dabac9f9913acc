"""The instance chooser (``gateway.routing``): its distribution properties, drawn many times.

Instances are plain objects with a count of requests in flight (all the router reads); the
router is the real one. Draws use a seeded generator so that a failure can be replayed, and
the bounds are wide (5 sigma) so that a correct router never fails by chance.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from gateway.routing import CANDIDATES, Router, stable_hash
from pipelines.spec import RoutingStrategy

LOR = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS


@dataclass(eq=False)
class Instance:
    name: str
    inflight: int = 0
    healthy: bool = True
    #: The models loaded here, each with its own requests in flight.
    models: dict[str, int] = field(default_factory=dict)


def in_use(instance: Instance, target: str) -> int | None:
    return instance.models.get(target)


def fleet(n: int) -> list[Instance]:
    return [Instance(f"i{k}") for k in range(n)]


def router(
    instances: list[Instance], strategy: RoutingStrategy = LOR, seed: int = 7
) -> Router[Instance]:
    return Router(instances, strategy, [i.name for i in instances], rng=random.Random(seed).random)


def within(count: int, n: int, p: float) -> bool:
    spread = 5 * math.sqrt(n * p * (1 - p))
    return n * p - spread <= count <= n * p + spread


# ---- least outstanding requests ------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_lor_never_picks_a_busier_instance_than_the_least_busy(n: int) -> None:
    instances = fleet(n)
    chooser = router(instances)
    draw = random.Random(n)
    for _ in range(2000):
        for instance in instances:
            instance.inflight = draw.randrange(4)
        assert chooser.choose().inflight == min(i.inflight for i in instances)


def test_lor_breaks_ties_at_random() -> None:
    instances = fleet(3)
    instances[2].inflight = 1
    chooser = router(instances)
    counts = Counter(chooser.choose().name for _ in range(3000))
    assert counts["i2"] == 0
    assert within(counts["i0"], 3000, 0.5) and within(counts["i1"], 3000, 0.5)


def test_lor_follows_the_load_as_it_changes() -> None:
    """Requests counted in as they are routed spread evenly; a slow one is routed around."""
    instances = fleet(2)
    chooser = router(instances)
    slow = chooser.choose()
    slow.inflight += 1  # held for long
    for _ in range(10):
        fast = chooser.choose()
        assert fast is not slow
        fast.inflight += 1
        fast.inflight -= 1  # answered before the next arrives


def test_one_instance_is_always_the_one() -> None:
    only = fleet(1)
    for strategy in RoutingStrategy:
        assert Router(only, strategy).choose("m", in_use) is only[0]


def test_an_instance_that_cannot_answer_does_not_draw_the_traffic() -> None:
    """A restarting instance fails fast and so looks idle: it is passed over while others run."""
    instances = fleet(3)
    instances[0].healthy = False
    instances[1].inflight, instances[2].inflight = 5, 3
    chooser = router(instances)
    assert all(chooser.choose() is instances[2] for _ in range(50))
    drawn = router(instances, RoutingStrategy.RANDOM)
    assert all(drawn.choose() is not instances[0] for _ in range(50))
    home = instances[chooser.walk("m")[0]]
    home.models["m"] = 0
    home.healthy = False
    assert chooser.choose("m", in_use).healthy
    for instance in instances:
        instance.healthy = False
    assert chooser.choose() in instances  # none can: the one chosen says why


# ---- random ----------------------------------------------------------------------------------


def test_random_is_uniform_and_ignores_the_load() -> None:
    instances = fleet(4)
    instances[0].inflight = 50
    chooser = router(instances, RoutingStrategy.RANDOM)
    counts = Counter(chooser.choose().name for _ in range(4000))
    assert all(within(counts[i.name], 4000, 0.25) for i in instances)


# ---- model affinity --------------------------------------------------------------------------


def serve(chooser: Router[Instance], target: str) -> Instance:
    """Route ``target`` and load it where it went (as the instance's model manager would)."""
    instance = chooser.choose(target, in_use)
    instance.models.setdefault(target, 0)
    return instance


def test_a_model_keeps_going_to_the_same_instance() -> None:
    instances = fleet(3)
    chooser = router(instances)
    for k in range(50):
        first = serve(chooser, f"m{k}")
        assert all(serve(chooser, f"m{k}") is first for _ in range(5))
    assert sum(len(i.models) for i in instances) == 50  # one copy each


def test_the_home_is_stable_across_routers_and_processes() -> None:
    a, b = fleet(3), fleet(3)
    assert [router(a).walk(f"m{k}") for k in range(200)] == [
        router(b, seed=99).walk(f"m{k}") for k in range(200)
    ]
    assert stable_hash("m1") == 0xD11F79D4B490B654  # blake2b: never salted per process


def test_a_model_goes_where_it_is_loaded_even_off_its_home() -> None:
    instances = fleet(3)
    chooser = router(instances)
    home, second, _ = chooser.walk("m")
    instances[second].models["m"] = 0
    assert chooser.choose("m", in_use) is instances[second]
    instances[second].inflight = instances[second].models["m"] = 5  # hot and over its share
    assert chooser.choose("m", in_use) is instances[home]


def test_a_hot_model_spills_from_a_busy_home_to_the_next_in_its_walk() -> None:
    instances = fleet(4)
    chooser = router(instances)
    home, second, third, _ = chooser.walk("hot")
    assert serve(chooser, "hot") is instances[home]
    # With this request the mean is 3/4, the bound ceil(1.5 x 3/4) = 2: two requests of the
    # model itself in flight put the home over its share, but the model is not hot (HOT = 3):
    # they are answered soon, and a second copy would cost a load. It stays.
    instances[home].inflight = instances[home].models["hot"] = 2
    assert serve(chooser, "hot") is instances[home]
    # The mean is 1, the bound 2: three of its own in flight, it is hot, and it spills to the
    # next instance, which loads it too.
    instances[home].inflight = instances[home].models["hot"] = 3
    assert serve(chooser, "hot") is instances[second]
    # 8 in flight and this one: the bound is ceil(1.5 x 9/4) = 4, both holders are at it.
    instances[second].inflight = instances[second].models["hot"] = 4
    instances[home].inflight = instances[home].models["hot"] = 4
    assert serve(chooser, "hot") is instances[third]
    assert sum("hot" in i.models for i in instances) == 3  # a hot model on several instances
    for instance in instances:
        instance.inflight = 0
    assert chooser.choose("hot", in_use) is instances[home]  # the load gone, home again


def test_a_cold_model_waits_at_its_busy_holder_rather_than_load_again() -> None:
    instances = fleet(3)
    chooser = router(instances)
    home, _, _ = chooser.walk("cold")
    serve(chooser, "cold")
    instances[home].inflight = 5  # busy with other models' requests
    assert chooser.choose("cold", in_use) is instances[home]
    assert sum("cold" in i.models for i in instances) == 1


def test_a_model_loaded_nowhere_skips_a_busy_home() -> None:
    instances = fleet(3)
    chooser = router(instances)
    home, second, _ = chooser.walk("new")
    instances[home].inflight = 5
    assert serve(chooser, "new") is instances[second]
    instances[home].inflight = 0
    assert chooser.choose("new", in_use) is instances[second]  # it stays where it was loaded


def test_under_an_even_load_a_model_has_about_one_copy() -> None:
    """1,000 models drawn uniformly, 6 requests in flight at a time over 3 instances."""
    instances = fleet(3)
    chooser = router(instances)
    draw = random.Random(3)
    window: list[Instance] = []
    for _ in range(20_000):
        instance = serve(chooser, f"m{draw.randrange(1000)}")
        instance.inflight += 1
        window.append(instance)
        if len(window) > 6:
            window.pop(draw.randrange(len(window))).inflight -= 1
    distinct = set().union(*(i.models for i in instances))
    copies = sum(len(i.models) for i in instances) / len(distinct)
    assert len(distinct) == 1000 and copies <= 1.1
    shares = [len(i.models) / 1000 for i in instances]
    assert all(0.2 <= s <= 0.5 for s in shares), shares  # each instance about a third


def move_between(
    before: list[str], after: list[str], models: list[str]
) -> tuple[float, Callable[[str], tuple[str, str]]]:
    """The share of ``models`` whose home differs between the two fleets, and a lookup."""
    old = Router(fleet(len(before)), keys=before)
    new = Router(fleet(len(after)), keys=after)

    def homes(model: str) -> tuple[str, str]:
        return before[old.walk(model)[0]], after[new.walk(model)[0]]

    moved = sum(a != b for a, b in map(homes, models))
    return moved / len(models), homes


def test_an_instance_added_takes_only_its_own_models() -> None:
    models = [f"customer-{k}" for k in range(3000)]
    share, homes = move_between(["a", "b", "c"], ["a", "b", "c", "d"], models)
    for model in models:
        was, now = homes(model)
        assert now == was or now == "d"  # nothing moves between the instances that stayed
    assert 0.15 <= share <= 0.35  # about a quarter


def test_an_instance_removed_gives_back_only_its_own_models() -> None:
    models = [f"customer-{k}" for k in range(3000)]
    share, homes = move_between(["a", "b", "c", "d"], ["a", "c", "d"], models)
    for model in models:
        was, now = homes(model)
        assert now == was or was == "b"
    assert 0.15 <= share <= 0.35


def test_a_walk_longer_than_the_candidates_falls_back_to_the_least_busy() -> None:
    instances = fleet(2 * CANDIDATES)
    chooser = router(instances)
    walk = chooser.walk("m")
    assert len(walk) == CANDIDATES == len(set(walk))
    for index in walk:
        instances[index].inflight = 10  # 80 in flight over 16: the bound is ceil(7.6) = 8
    chosen = chooser.choose("m", in_use)
    assert chosen.inflight == 0 and instances.index(chosen) not in walk


def test_a_router_needs_instances_with_distinct_keys() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Router([])
    with pytest.raises(ValueError, match="distinct key"):
        Router(fleet(2), keys=["a", "a"])
