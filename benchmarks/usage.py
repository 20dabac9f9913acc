"""What the usage ledger gets right and what it costs: 1,000 models under a Zipf stream.

    .venv/bin/python benchmarks/usage.py [--requests 200000] [--seconds 2] [--rounds 3] [--quick]

Everything goes through the real parts, in one process: the metric store's ``Recorder`` (what the
invocation core calls), its ``MetricService`` flush into a real state database, and the
``UsageService`` that taps it. Printed, never asserted:

1. **totals**: the ledger's invocations per model against what was sent (exactly), and its model
   time against the sum of the containers' timings sent (relative error);
2. **flush**: a flush's cost per request with the ledger over without (off the hot path);
3. **hot path**: 16 concurrent request loops calling the recorder as the core does, while the
   flusher drains every 50 ms in a worker thread (GIL contention is what the ledger could add):
   requests per second with the ledger over without, in alternating rounds (goal >= 0.97);
4. **Prometheus**: the per-model series with 10 and with 1,000 models (top K + ``other``).

Until the invocation core calls the recorder (the data-plane refactor wires it), a run through a
real gateway would record nothing; this feeds the recorder exactly as the core will.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT)]  # this folder has a gateway.py of its own: the package must win

from gateway.cloudwatch import MetricService, Recorder  # noqa: E402
from gateway.metrics import GatewayMetrics  # noqa: E402
from gateway.usage import UsageService  # noqa: E402
from gateway.usage.topk import TopModels  # noqa: E402

EP, VARIANT = "mme", "AllTraffic"


def models(n: int) -> list[str]:
    return [f"customer-{i:04d}.tar.gz" for i in range(n)]


def zipf(n: int, count: int, seed: int = 1) -> list[tuple[str, int]]:
    """``count`` requests over ``n`` models (weight 1/rank) with a container time each (µs)."""
    rng = random.Random(seed)
    names = models(n)
    picks = rng.choices(names, [1 / (rank + 1) for rank in range(n)], k=count)
    return [(name, rng.randint(300, 5000)) for name in picks]


def service(folder: Path, ledger: bool) -> tuple[MetricService, UsageService | None]:
    metrics = MetricService(
        folder / "control.db", retention=86400, flush_interval=10, max_points=10**7
    )
    usage = UsageService(metrics, retention=86400 * 90) if ledger else None
    return metrics, usage


def close(metrics: MetricService, usage: UsageService | None) -> None:
    if usage is not None:
        usage.close()
    metrics.store.close()


def totals(folder: Path, stream: list[tuple[str, int]]) -> None:
    metrics, usage = service(folder / "totals", ledger=True)
    assert usage is not None
    sent: dict[str, list[int]] = {}
    for name, model_us in stream:
        metrics.recorder.invocation(EP, VARIANT, name, "2xx", model_us, 80, 120, 64)
        found = sent.setdefault(name, [0, 0])
        found[0] += 1
        found[1] += model_us
    now = time.time()
    groups = usage.report(now - 3600, now + 1, "model")
    got = {g["model"]: g for g in groups}
    exact = all(got[name]["invocations"] == n for name, (n, _) in sent.items())
    errors = [abs(got[n]["model_seconds"] - us / 1e6) / (us / 1e6) for n, (_, us) in sent.items()]
    print(f"models sent to          {len(sent):8d} (of 1,000), requests {len(stream):,}")
    print(f"invocations exact       {'yes' if exact and len(got) == len(sent) else 'NO':>8}")
    print(f"model time, worst error {max(errors) * 100:8.4f} % of the containers' own timing")
    close(metrics, usage)


def flush_cost(folder: Path, stream: list[tuple[str, int]], rounds: int) -> None:
    per: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for ledger in (False, True):
            metrics, usage = service(folder / f"flush-{r}-{ledger}", ledger)
            for name, model_us in stream:
                metrics.recorder.invocation(EP, VARIANT, name, "2xx", model_us, 80, 120, 64)
            began = time.perf_counter()
            metrics.flush()
            per[ledger].append((time.perf_counter() - began) / len(stream))
            close(metrics, usage)
    without, with_ = statistics.median(per[False]), statistics.median(per[True])
    print(f"flush with / without    {with_ / without:8.2f}x per request (off the hot path)")


async def load(metrics: MetricService, names: list[str], seconds: float) -> float:
    """Requests per second of 16 concurrent loops recording as the core does."""
    done = 0
    stop = time.perf_counter() + seconds
    recorder = metrics.recorder

    async def loop(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            name = names[(i * 7919 + done) % len(names)]
            recorder.concurrent_requests(EP, VARIANT, 3)
            recorder.model_cache(EP, VARIANT, name, True, None)
            recorder.invocation(EP, VARIANT, name, "2xx", 900, 80, 120, 64)
            done += 1
            await asyncio.sleep(0)

    async def flusher() -> None:
        while time.perf_counter() < stop:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(metrics.flush)

    began = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(16)), flusher())
    return done / (time.perf_counter() - began)


def hot_path(folder: Path, seconds: float, rounds: int) -> None:
    rates: dict[bool, list[float]] = {False: [], True: []}
    names = models(1000)
    for r in range(rounds):
        for ledger in (False, True) if r % 2 == 0 else (True, False):
            metrics, usage = service(folder / f"hot-{r}-{ledger}", ledger)
            rates[ledger].append(asyncio.run(load(metrics, names, seconds)))
            close(metrics, usage)
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"c=16 req/s with/without {ratio:8.3f} (the ledger folding beside; goal >= 0.97)")


def series(n: int) -> int:
    """Samples of ``tandem_model_window_invocations`` after one request to each of ``n``."""
    top = TopModels(50, window=300)
    recorder = Recorder()
    recorder.tap(top.add)
    for name in models(n):
        recorder.invocation(EP, VARIANT, name, "2xx", 900, 80, 120, 64)
    recorder.drain()
    metrics = GatewayMetrics([])
    metrics.per_model(lambda: top.sample(time.time()))
    text = metrics.render().decode()
    return sum(line.startswith("tandem_model_window_invocations{") for line in text.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="per hot-path round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds, args.rounds = 5000, 0.2, 1
    stream = zipf(1000, args.requests)
    with tempfile.TemporaryDirectory(prefix="tandem-usage-") as tmp:
        folder = Path(tmp)
        totals(folder, stream)
        flush_cost(folder, stream, args.rounds)
        hot_path(folder, args.seconds, args.rounds)
    few, many = series(10), series(1000)
    print(f"prometheus series       {few:8d} with 10 models, {many} with 1,000 (K=50 + other)")


if __name__ == "__main__":
    main()
