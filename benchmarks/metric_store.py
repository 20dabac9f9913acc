"""What a request pays for the CloudWatch metric store: the recorder's calls against a no-op.

    .venv/bin/python benchmarks/metric_store.py [--calls 200000] [--rounds 5]

A request on a MultiModel endpoint makes the three hot-path calls the invocation core makes
(``concurrent_requests`` when it starts, ``model_cache`` and ``invocation`` when it ends). The
script times those three calls on the real ``Recorder`` and on a recorder whose methods do
nothing, in alternating rounds in one process, and prints the cost per request of each, their
difference (what the store adds per request) and the ratio. It then drains what was recorded
(the flusher's rollup, off the hot path) and prints that cost per request too. The figures are
reported, not asserted: the issue's goal is a throughput ratio of at least 0.97 at c=16 through
the gateway, which the difference here (well under a microsecond against a request's few hundred)
bounds from above.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT)]  # this folder has a gateway.py of its own: the package must win

from gateway.cloudwatch import Recorder  # noqa: E402


class NoOp:
    """A recorder that records nothing: the same calls, bound the same way."""

    def invocation(self, *args: Any, **kwargs: Any) -> None:
        pass

    def concurrent_requests(self, *args: Any) -> None:
        pass

    def model_cache(self, *args: Any) -> None:
        pass


def one_round(recorder: Any, calls: int) -> float:
    """Seconds per request for ``calls`` requests' worth of recorder calls."""
    concurrent = recorder.concurrent_requests
    cache = recorder.model_cache
    invocation = recorder.invocation
    began = time.perf_counter()
    for i in range(calls):
        concurrent("ep", "AllTraffic", 3)
        cache("ep", "AllTraffic", "model-7", True, None)
        invocation("ep", "AllTraffic", "model-7", "2xx", 812 + (i & 63), 95, 120, 64)
    return (time.perf_counter() - began) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    recorder, noop = Recorder(), NoOp()
    timings: dict[str, list[float]] = {"recorder": [], "no-op": []}
    drains: list[float] = []
    for _ in range(args.rounds):
        timings["no-op"].append(one_round(noop, args.calls))
        timings["recorder"].append(one_round(recorder, args.calls))
        began = time.perf_counter()
        recorder.drain()
        drains.append((time.perf_counter() - began) / args.calls)
    real = statistics.median(timings["recorder"])
    none = statistics.median(timings["no-op"])
    print(f"requests per round: {args.calls:,}, rounds: {args.rounds} (medians)")
    print(f"no-op recorder      {none * 1e9:8.0f} ns per request (3 calls)")
    print(f"metric store        {real * 1e9:8.0f} ns per request (3 calls)")
    print(f"added per request   {(real - none) * 1e9:8.0f} ns")
    print(f"ratio               {real / none:8.2f}x the no-op")
    rollup = statistics.median(drains) * 1e9
    print(f"rollup (flusher)    {rollup:8.0f} ns per request, off the path")


if __name__ == "__main__":
    main()
