"""What the usage ledger gets right and what it costs: 1,000 models under a Zipf stream.

    .venv/bin/python benchmarks/usage.py [--requests 200000] [--seconds 2] [--rounds 3] \
        [--pairs 16] [--quick]

Printed, never asserted:

1. **totals**: 200,000 requests fed to the metric store's ``Recorder`` (as the invocation core
   reports them), its ``MetricService`` flushed into a real state database and the
   ``UsageService`` that taps it: the ledger's invocations per model against what was sent
   (exactly), its model time against the times sent;
2. **flush**: a flush's cost per request with the ledger over without (off the hot path), and
   the ledger's own work per request, in flushes of 1,000 requests a second (the gateway's);
3. **real gateway** (``usage_gateway.py``): a gateway composed as ``tandem serve`` composes it,
   with the ledger or without, in front of one scikit-learn MultiModel container of 1,000 models,
   a Zipf stream at c=16: the ledger's invocations per model against what the client sent, its
   model time against the container's own count (its ``GET /metrics``), the gateway's own
   measure of the container (``ModelLatency``) against it too, and the requests per second with
   the ledger over without: the median of 16 pairs of 2 s bursts' ratios (goal >= 0.97), the
   gateway's CPU per request beside it;
4. **Prometheus**: the per-model series with 10 and with 1,000 models (top K + ``other``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT)]  # this folder has a gateway.py of its own: the package must win

from benchmarks.usage_gateway import measure  # noqa: E402
from gateway.cloudwatch import MetricService, Recorder  # noqa: E402
from gateway.metrics import GatewayMetrics  # noqa: E402
from gateway.usage import UsageService  # noqa: E402
from gateway.usage.topk import TopModels  # noqa: E402

EP, VARIANT = "mme", "AllTraffic"
#: Requests per flush in the ledger's own work: a second's worth at the real gateway's rate.
BATCH = 1000


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
    print(f"model time, worst error {max(errors) * 100:8.4f} % of the times sent")
    close(metrics, usage)


def flush_cost(folder: Path, stream: list[tuple[str, int]], rounds: int) -> float:
    """Seconds the ledger's own work takes, per request."""
    per: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for ledger in (False, True):
            metrics, usage = service(folder / f"flush-{r}-{ledger}", ledger)
            metrics.flush()  # the first transaction makes the tables: not what is measured
            for name, model_us in stream:
                metrics.recorder.invocation(EP, VARIANT, name, "2xx", model_us, 80, 120, 64)
            began = time.perf_counter()
            metrics.flush()
            per[ledger].append((time.perf_counter() - began) / len(stream))
            close(metrics, usage)
    without, with_ = statistics.median(per[False]), statistics.median(per[True])
    print(f"flush with / without    {with_ / without:8.2f}x per request (off the hot path)")
    work: list[float] = []
    for r in range(rounds):  # the ledger's part alone: its fold and its transactions
        db = folder / f"work-{r}.db"
        metrics = MetricService(db, retention=86400, flush_interval=1, max_points=10**7)
        clock = [time.time()]
        usage = UsageService(metrics, retention=86400 * 90, clock=lambda c=clock: c[0])
        for name in models(1000):  # resident, as in the gateway: their memory is accrued too
            metrics.recorder.model_loaded(EP, VARIANT, name, None, 900, 1, size_bytes=2**20)
        metrics.flush()  # the first transaction makes the tables: not what is measured
        events: list[tuple[Any, ...]] = []
        metrics.recorder.tap(events.extend)
        for name, model_us in stream:
            metrics.recorder.invocation(EP, VARIANT, name, "2xx", model_us, 80, 120, 64)
        metrics.recorder.drain()
        spent = 0.0
        for at in range(0, len(events), BATCH):  # one flush a second, as the gateway's
            clock[0] += 1.0
            began = time.perf_counter()
            usage.consume(events[at : at + BATCH])
            spent += time.perf_counter() - began
        work.append(spent / len(stream))
        close(metrics, usage)
    print(f"ledger's own work       {statistics.median(work) * 1e9:8.0f} ns per request "
          f"(flushes of {BATCH:,} a second)")  # fmt: skip
    return statistics.median(work)


def real_gateway(folder: Path, seconds: float, rounds: int, ledger_s: float) -> None:
    """A real gateway and container: the ledger checked against the client and the container's
    own clock, and the hot path's rate with the ledger over without, the median of the pairs'
    ratios (the rate swings with the neighbours' load; the two bursts of a pair see the same).
    Two more ratios follow: the gateway process's CPU time per request (its loop and its
    flusher, one GIL) without over with, and the one the ledger's own work (part 2) implies."""
    results, check = measure(folder, seconds, rounds)
    got = {m: int(g["invocations"]) for m, g in check.groups.items() if g["invocations"]}
    own = sum(check.own.values())
    ratio = sum(float(g["model_seconds"]) for g in check.groups.values()) / own
    worst = max(
        abs(float(check.groups.get(name, {}).get("model_seconds", 0.0)) - seconds_own) / seconds_own
        for name, seconds_own in check.own.items()
        if seconds_own > 0
    )
    print(f"real gateway            {len(check.own):8d} models, {sum(check.sent.values()):,} "
          "requests through the ledger's gateway")  # fmt: skip
    print(f"  invocations exact     {'yes' if got == check.sent else 'NO':>8} (per model, as sent)")
    print(f"  model time / own      {ratio:8.5f} (the ledger's over the container's own count)")
    print(f"  worst model's error   {worst * 100:8.4f} %")
    print(f"  gateway-seen / own    {check.seen_s / own:8.3f} (ModelLatency, the hop in)")
    print(f"  errors                {check.errors:8d}")
    # measure() appends each round's two bursts one after the other: a pair sees the same
    # neighbours, so the median of the pairs' ratios is the figure (one-off swings drop out).
    pairs = [
        (a, b) if a.ledger else (b, a) for a, b in zip(results[::2], results[1::2], strict=True)
    ]
    rate = [w.rps / o.rps for w, o in pairs]
    cpu = [o.cpu_per_request / w.cpu_per_request for w, o in pairs]
    for w, o in pairs:
        print(
            f"  pair with/without     {w.rps:5.0f} /{o.rps:5.0f} req/s, gateway CPU "
            f"{w.cpu_per_request * 1e6:4.0f} /{o.cpu_per_request * 1e6:4.0f} µs per request"
        )
    without = statistics.median(r.rps for r in results if not r.ledger)
    with_ = statistics.median(r.rps for r in results if r.ledger)
    print(
        f"gateway c=16 req/s      {without:8.0f} without the ledger, {with_:.0f} with it (medians)"
    )
    spread, cpu_spread = f"{min(rate):.3f}..{max(rate):.3f}", f"{min(cpu):.3f}..{max(cpu):.3f}"
    print(f"c=16 req/s with/without {statistics.median(rate):8.3f} the figure (goal >= 0.97): "
          f"median of {len(rate)} pairs' ratios, {spread}")  # fmt: skip
    print(f"  CPU per request       {statistics.median(cpu):8.3f} without over with, median of "
          f"the pairs', {cpu_spread}")  # fmt: skip
    cpu_without = statistics.median(o.cpu_per_request for _w, o in pairs)
    implied = cpu_without / (cpu_without + ledger_s)
    print(f"                        {implied:8.3f} implied by the ledger's own work and the "
          f"CPU per request without it ({cpu_without * 1e6:.0f} µs)")  # fmt: skip


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
    parser.add_argument("--seconds", type=float, default=2.0, help="per hot-path burst")
    parser.add_argument("--rounds", type=int, default=3, help="of the flush's measure")
    parser.add_argument("--pairs", type=int, default=16, help="of hot-path bursts")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds, args.rounds, args.pairs = 5000, 1.0, 1, 2
    stream = zipf(1000, args.requests)
    with tempfile.TemporaryDirectory(prefix="tandem-usage-") as tmp:
        folder = Path(tmp)
        totals(folder, stream)
        ledger_s = flush_cost(folder, stream, args.rounds)
        real_gateway(folder, args.seconds, args.pairs, ledger_s)
    few, many = series(10), series(1000)
    print(f"prometheus series       {few:8d} with 10 models, {many} with 1,000 (K=50 + other)")


if __name__ == "__main__":
    main()
