"""The streams of ``benchmarks/multimodel.py``: the Zipf stream and the scan case, each run once
per eviction policy (``TANDEM_EVICTION_POLICY``) on the same requests and the same memory.

A stream's loads are its cache misses (each miss is one load, shared by the requests that wait
for it); latencies are the clients' own, every request counted, failed ones as errors.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.multimodel_support import Client, gateway, invoke, metric, multi, pct, spec

POLICIES = ("lru", "value")


@dataclass
class Outcome:
    """One stream on one gateway: what the clients saw and what the gateway counted."""

    policy: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: dict[int, int]
    hits: float
    loads: float
    evictions: float
    loaded_at_end: int

    @property
    def hit_ratio(self) -> float:
        return self.hits / max(self.hits + self.loads, 1)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def row(self) -> str:
        lat = self.latencies or [float("inf")]
        return (
            f"  {self.policy:5}  hit ratio {self.hit_ratio:.3f}  loads {self.loads:5.0f}  "
            f"evictions {self.evictions:5.0f}  p50 {pct(lat, 50):6.1f}  p90 {pct(lat, 90):6.1f}  "
            f"p99 {pct(lat, 99):6.1f} ms  {self.rate:5.0f} req/s  "
            f"errors {sum(self.errors.values())} {self.errors or ''}"
        )


def run_stream(
    work: Path,
    name: str,
    container: dict[str, Any],
    stream: list[str],
    concurrency: int,
    policy: str,
    warm_first: list[str],
) -> Outcome:
    """``stream`` split over ``concurrency`` clients against a fresh gateway under ``policy``;
    ``warm_first`` are loaded before (each worker's one-off framework import is not a load)."""
    path = spec(work, f"{name}-{policy}", {"mm": container})
    endpoint = f"{name}-{policy}"
    latencies: list[float] = []
    errors: dict[int, int] = {}
    lock = threading.Lock()
    with gateway(work, path, env={"TANDEM_EVICTION_POLICY": policy}) as (host, port):
        first = Client(host, port)
        for target in warm_first:
            status, _ = invoke(first, endpoint, "mm", target)
            assert status == 200, (status, target)
        before = _counts(first)

        def client(chunk: list[str]) -> None:
            conn = Client(host, port)
            for target in chunk:
                status, ms = invoke(conn, endpoint, "mm", target)
                with lock:
                    if status == 200:
                        latencies.append(ms)
                    else:
                        errors[status] = errors.get(status, 0) + 1

        chunks = [stream[i::concurrency] for i in range(concurrency)]
        threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        last = Client(host, port)  # the first one's connection idled past the keep-alive
        after = _counts(last)
        info = last.get_json(f"/endpoints/{endpoint}/models")["Containers"][0]
    hits, loads, evictions = (a - b for a, b in zip(after, before, strict=True))
    return Outcome(
        policy, len(stream), seconds, latencies, errors, hits, loads, evictions,
        info["LoadedModelCount"],
    )  # fmt: skip


def _counts(client: Client) -> tuple[float, float, float]:
    return (
        metric(client, "tandem_model_cache_hits_total"),
        metric(client, "tandem_model_cache_misses_total"),
        metric(client, "tandem_model_evictions_total", reason="memory"),
    )


def scan_case(
    args: Any,
    work: Path,
    store: Path,
    small: list[str],
    memory: dict[str, float],
) -> dict[str, float]:
    """A hot set used all the time while a long run of one-time models passes through; memory
    for twice the hot set (and the headroom), less than what passes between two uses of a hot
    model. The hot set's loads per policy (goal: each hot model once)."""
    step = args.scan_between
    count = min(args.scan_once, len(small) - args.scan_hot - 1) // step * step
    hot, once = small[: args.scan_hot], small[args.scan_hot : args.scan_hot + count]
    stream = hot * 2
    for group in range(len(once) // step):
        stream += [*once[step * group : step * (group + 1)], hot[group % len(hot)]]
    limit = int(memory["baseline"] + 16 * 2**20 + memory["small"] * 2 * len(hot))
    container = multi(store, memory_limit=f"{limit}B")
    print(
        f"\n== scan: {len(hot)} hot models used all the time while {len(once)} one-time models "
        f"pass through ({step} before each hot request), memory for the hot set and about "
        f"{(limit - memory['baseline']) / memory['small'] - len(hot):.0f} more, concurrency 1"
    )
    loads: dict[str, float] = {}
    for policy in args.policies:
        # One model outside the stream loads first: the framework's import is not a load.
        outcome = run_stream(work, "scan", container, stream, 1, policy, small[-1:])
        loads[policy] = outcome.loads - len(once)  # each one-time model loads once
        print(outcome.row())
        print(f"         hot set loads {loads[policy]:.0f} (goal: {len(hot)}, each once)")
    return loads
