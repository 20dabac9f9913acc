"""How a variant's instances share requests: model affinity and least outstanding requests.

    .venv/bin/python benchmarks/instances.py [--requests 60000] [--seed 1] [--quick] [--real 30]

The choices are made by the gateway's own router (``gateway.routing.Router``), the one every
request goes through; the instances are simulated in virtual time (an event queue, no sleeping),
so every policy sees the very same stream and a run of a minute of traffic takes seconds. An
instance has worker slots (requests beyond them wait in its queue), and for MultiModel a memory
that holds a tenth of the models, unloaded in the order of the gateway's own eviction policy
(``--policy``: ``value``, the default as ``TANDEM_EVICTION_POLICY``'s, or ``lru``; the same on
every side); a request whose model is not loaded waits for its load (``--load-ms``), and
requests for a model being loaded share it.
``inflight`` is what the gateway counts: requests routed to an instance and not yet answered.

1. MultiModel: ``--instances`` instances each with memory for a tenth of ``--models`` models, a
   Zipf stream (``--zipf``) at ``--rate`` requests per second. Routed by model (affinity) against
   round robin (Tandem before issue 24) and least outstanding without affinity, against one
   instance with ``--instances`` times the memory and workers (the hit ratio to match), and
   against today's single instance taking its share of the stream (the p99 not to exceed).
   Goals (issue 24): copies per distinct loaded model <= 1.1 (round robin: about the number of
   instances), hit ratio >= the big instance's, p99 <= the single instance's.
2. Two instances that answer one request at a time, 1 request in 20 taking 200 ms and the rest
   1 ms: the fast requests' p99 under least outstanding requests against round robin and random;
   with ``--real SECONDS`` also through a real ``tandem serve`` (``instances_gateway.py``).

Prints ratios measured in this one run; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
import sys
import timeit
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.multimodel.eviction import EvictionPolicy, Lru, make_policy  # noqa: E402
from gateway.routing import Router  # noqa: E402
from pipelines.spec import RoutingStrategy  # noqa: E402

COPIES_GOAL = 1.1


@dataclass
class Request:
    arrival: float
    cost: float  # seconds of work once its model is ready
    model: str | None = None
    hit: bool = True


@dataclass(eq=False)
class Instance:
    """A simulated instance: worker slots, a queue, and (MultiModel) its loaded models, which
    leave in the order its eviction policy gives."""

    name: str
    workers: int
    capacity: int = 0
    inflight: int = 0
    healthy: bool = True
    running: int = 0
    queue: deque[Request] = field(default_factory=deque)
    #: Loaded (or loading) models, each with the time it is ready.
    loaded: dict[str, float] = field(default_factory=dict)
    policy: EvictionPolicy = field(default_factory=Lru)
    #: Requests routed here and not answered, per model.
    using: Counter[str] = field(default_factory=Counter)
    loads: int = 0


def in_use(instance: Instance, target: str) -> int | None:
    """What the dispatcher tells the router: the model's requests here, None if not loaded."""
    return instance.using[target] if target in instance.loaded else None


Choose = Callable[[Request], Instance]


def policy(name: str, instances: list[Instance], rng: random.Random) -> Choose:
    """The gateway's router for ``name``, or round robin (what a variant did before)."""
    keys = [i.name for i in instances]
    if name == "round robin":
        turn = itertools.cycle(instances)
        return lambda request: next(turn)
    strategy = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS
    if name == "random":
        strategy = RoutingStrategy.RANDOM
    router = Router(instances, strategy, keys, rng=rng.random)
    if name == "affinity":
        return lambda request: router.choose(request.model, in_use)
    return lambda request: router.choose()


class Simulation:
    """Discrete events in virtual time: arrivals, and ends of service."""

    def __init__(self, instances: list[Instance], choose: Choose, load: float) -> None:
        self.instances, self.choose, self.load = instances, choose, load
        self.events: list[tuple[float, int, Instance, Request]] = []
        self.order = itertools.count()
        self.latencies: list[tuple[Request, float]] = []

    def run(self, stream: Sequence[Request]) -> list[tuple[Request, float]]:
        arrivals = iter(stream)
        upcoming = next(arrivals, None)
        while upcoming is not None or self.events:
            if upcoming is not None and (not self.events or upcoming.arrival <= self.events[0][0]):
                self.arrive(upcoming)
                upcoming = next(arrivals, None)
            else:
                now, _, instance, request = heapq.heappop(self.events)
                self.finish(instance, request, now)
        return self.latencies

    def arrive(self, request: Request) -> None:
        instance = self.choose(request)
        instance.inflight += 1
        if request.model is not None:
            instance.using[request.model] += 1
            if request.model in instance.loaded:
                instance.policy.on_hit(request.model)
            else:  # reserve it: the next ones share the load
                instance.policy.on_miss(request.model)
                self.start_load(instance, request.model, request.arrival)
        if instance.running < instance.workers:
            self.start(instance, request, request.arrival)
        else:
            instance.queue.append(request)

    def start_load(self, instance: Instance, model: str, now: float) -> None:
        """As the model manager: room made among the idle models, one model's worth."""
        short = len(instance.loaded) + 1 - instance.capacity
        if short > 0:
            idle = {m for m in instance.loaded if instance.using[m] == 0}
            for victim in instance.policy.victims(short, idle):
                del instance.loaded[victim]
                instance.policy.on_unload(victim)
        instance.loaded[model] = now + self.load  # ready then (a request waits for it)
        instance.policy.on_load(model, 1, self.load)
        instance.loads += 1

    def start(self, instance: Instance, request: Request, now: float) -> None:
        instance.running += 1
        ready = now
        if request.model is not None:
            ready = max(now, instance.loaded[request.model])
            request.hit = ready <= now
        heapq.heappush(self.events, (ready + request.cost, next(self.order), instance, request))

    def finish(self, instance: Instance, request: Request, now: float) -> None:
        instance.running -= 1
        instance.inflight -= 1
        if request.model is not None:
            instance.using[request.model] -= 1
        self.latencies.append((request, now - request.arrival))
        if instance.queue:
            self.start(instance, instance.queue.popleft(), now)


def poisson(rate: float, count: int, rng: random.Random) -> list[float]:
    now, out = 0.0, []
    for _ in range(count):
        now += rng.expovariate(rate)
        out.append(now)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Outcome:
    mean: float
    p50: float
    p99: float
    hit_ratio: float
    copies: float
    loads: int


def measure(
    instances: list[Instance], name: str, stream: list[Request], load: float, seed: int
) -> Outcome:
    fresh = [Request(r.arrival, r.cost, r.model) for r in stream]
    done = Simulation(instances, policy(name, instances, random.Random(seed)), load).run(fresh)
    seconds = [latency for _, latency in done]
    models = [r for r, _ in done if r.model is not None]
    distinct = set().union(*(i.loaded for i in instances))
    copies = sum(len(i.loaded) for i in instances) / max(len(distinct), 1)
    return Outcome(
        statistics.fmean(seconds),
        statistics.median(seconds),
        percentile(seconds, 0.99),
        sum(r.hit for r in models) / max(len(models), 1),
        copies,
        sum(i.loads for i in instances),
    )


def multimodel(args: argparse.Namespace) -> dict[str, Outcome]:
    rng = random.Random(args.seed)
    names = [f"customer-{k:04d}" for k in range(args.models)]
    rng.shuffle(names)  # the hot models are anywhere on the ring
    weights = list(itertools.accumulate(1 / (rank + 1) ** args.zipf for rank in range(args.models)))
    times = poisson(args.rate, args.requests, rng)
    drawn = rng.choices(names, cum_weights=weights, k=args.requests)
    stream = [Request(t, args.invoke_ms / 1000, m) for t, m in zip(times, drawn, strict=True)]
    capacity, n, load = args.models // 10, args.instances, args.load_ms / 1000

    def fleet(count: int, memory: int, workers: int) -> list[Instance]:
        return [
            Instance(f"i{k}", workers, memory, policy=make_policy(args.policy))
            for k in range(count)
        ]

    share = stream[::n]  # what one instance of today's takes: a third of the stream (n = 3)
    return {
        "affinity": measure(fleet(n, capacity, args.workers), "affinity", stream, load, args.seed),
        "round robin": measure(fleet(n, capacity, args.workers), "round robin", stream, load, 0),
        "least outstanding": measure(fleet(n, capacity, args.workers), "lor", stream, load, 0),
        f"one, {n}x memory": measure(
            fleet(1, n * capacity, n * args.workers), "lor", stream, load, 0
        ),
        "one, alone": measure(fleet(1, capacity, args.workers), "lor", share, load, 0),
    }


def slow_one_in_twenty(args: argparse.Namespace) -> dict[str, tuple[float, float, float]]:
    """p50, p95 and p99 of the fast requests under each policy, the same stream for all."""
    rng = random.Random(args.seed)
    count = args.requests
    times = poisson(args.mixed_rate, count, rng)
    stream = [Request(t, 0.2 if rng.random() < 0.05 else 0.001) for t in times]
    out = {}
    for name in ("round robin", "random", "least outstanding"):
        instances = [Instance("a", 1), Instance("b", 1)]
        fresh = [Request(r.arrival, r.cost) for r in stream]
        done = Simulation(instances, policy(name, instances, random.Random(args.seed)), 0).run(
            fresh
        )
        fast = [latency for r, latency in done if r.cost < 0.1]
        out[name] = (statistics.median(fast), percentile(fast, 0.95), percentile(fast, 0.99))
    return out


class RoundRobin:
    """What ``Variant.instance`` (round robin) did before issue 24, for the cost comparison."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances, self.turn = instances, 0

    def instance(self) -> Instance:
        instances = self.instances
        self.turn = turn = (self.turn + 1) % len(instances)
        return instances[turn]


def choice_costs(number: int) -> dict[str, float]:
    """Nanoseconds per choice: round robin, least outstanding (2 instances), by model (3)."""
    two = [Instance("a", 1, inflight=1), Instance("b", 1)]
    three = [Instance(f"i{k}", 1, 10, inflight=k) for k in range(3)]
    by_model = Router(three, keys=[i.name for i in three])
    target = "customer-0042"
    three[by_model.walk(target)[0]].loaded[target] = 0.0
    calls = {
        "round robin, 2": RoundRobin(two).instance,
        "least outstanding, 2": Router(two).choose,
        "by model, 3": lambda: by_model.choose(target, in_use),
    }
    return {name: timeit.timeit(call, number=number) / number * 1e9 for name, call in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="requests an instance runs at once")
    parser.add_argument("--zipf", type=float, default=1.0, help="the stream's Zipf exponent")
    parser.add_argument("--rate", type=float, default=150.0, help="MultiModel requests per second")
    parser.add_argument("--invoke-ms", type=float, default=5.0)
    parser.add_argument("--load-ms", type=float, default=150.0)
    parser.add_argument("--mixed-rate", type=float, default=20.0, help="requests/s, part 2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--policy",
        choices=("value", "lru"),
        default="value",
        help="the instances' eviction policy (TANDEM_EVICTION_POLICY), the same for every side",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6,000 requests")
    parser.add_argument(
        "--real",
        type=float,
        default=0,
        metavar="SECONDS",
        help="also run part 2 through a real tandem serve for this long per strategy",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests = 6_000
    print(
        f"1. MultiModel: {args.instances} instances x memory for {args.models // 10} of "
        f"{args.models} models, Zipf {args.zipf}, {args.requests} requests at {args.rate:g}/s, "
        f"{args.workers} workers each, load {args.load_ms:g} ms, invoke {args.invoke_ms:g} ms, "
        f"eviction {args.policy}"
    )
    found = multimodel(args)
    print(
        f"   {'routing':<20} {'copies':>7} {'loads':>6} {'hit ratio':>9} {'mean ms':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for name, o in found.items():
        print(
            f"   {name:<20} {o.copies:>7.2f} {o.loads:>6} {o.hit_ratio:>9.3f} "
            f"{o.mean * 1000:>8.1f} {o.p50 * 1000:>8.1f} {o.p99 * 1000:>8.1f}"
        )
    mine, big = found["affinity"], found[f"one, {args.instances}x memory"]
    alone, rr = found["one, alone"], found["round robin"]
    print(
        f"   copies per distinct loaded model: {mine.copies:.2f} (goal <= {COPIES_GOAL}; "
        f"round robin {rr.copies:.2f})"
    )
    print(
        f"   hit ratio affinity / one instance with {args.instances}x memory: "
        f"{mine.hit_ratio / big.hit_ratio:.3f} (goal >= 1); / round robin: "
        f"{mine.hit_ratio / rr.hit_ratio:.3f}"
    )
    print(
        f"   p99 affinity / today's single instance: {mine.p99 / alone.p99:.3f} (goal <= 1); "
        f"mean: {mine.mean / alone.mean:.3f}; mean / round robin: {mine.mean / rr.mean:.3f}"
    )
    print(
        f"2. Two instances answering one request at a time, 1 in 20 taking 200 ms, the rest 1 ms, "
        f"{args.requests} requests at {args.mixed_rate:g}/s"
    )
    mixed = slow_one_in_twenty(args)
    for name, (p50, p95, p99) in mixed.items():
        print(
            f"   {name:<20} fast p50 {p50 * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   "
            f"p99 {p99 * 1000:7.2f} ms"
        )
    lor, rr_fast = mixed["least outstanding"], mixed["round robin"]
    print(
        f"   fast p99 least outstanding / round robin: {lor[2] / rr_fast[2]:.3f} "
        f"(p95: {lor[1] / rr_fast[1]:.3f})"
    )
    if args.real:
        from benchmarks.instances_gateway import run

        real = run(args.mixed_rate, args.real, args.seed)
        for name, (p95, p99) in real.items():
            print(
                f"   tandem serve: {name:<18} fast p95 {p95 * 1000:7.2f} ms   "
                f"p99 {p99 * 1000:7.2f} ms"
            )
        (lor95, lor99), (rand95, rand99) = real["least outstanding"], real["random"]
        print(
            f"   through tandem serve, fast p99 least outstanding / random: {lor99 / rand99:.3f} "
            f"(p95: {lor95 / rand95:.3f})"
        )
    costs = choice_costs(20_000 if args.quick else 200_000)
    base = costs["round robin, 2"]
    print("3. The choice itself, per request (instances): ", end="")
    print(", ".join(f"{name} {ns / base:.2f}x" for name, ns in costs.items()), end="")
    print(f" of round robin's {base:.0f} ns")


if __name__ == "__main__":
    main()
