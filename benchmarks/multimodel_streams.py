"""The streams of ``benchmarks/multimodel.py``: the Zipf stream and the scan case, each run once
per eviction policy (``TANDEM_EVICTION_POLICY``) on the same requests and the same memory.

A stream's loads are its cache misses (each miss is one load, shared by the requests that wait
for it); latencies are the clients' own, every request counted, failed ones as errors. Where a
miss's time goes is the gateway's own means over the stream: fetch and unpack
(ModelDownloadingTime, first loads only), the container's load (ModelLoadingTime), the unloads,
and what a request that missed waited in all (ModelLoadingWaitTime). The CPU seconds that the
gateway and its container spent on the stream are the one figure that a machine shared with
other work does not move much, where times and rates do. Each stream starts with nothing left to
write back (``os.sync``, and the run before has deleted its disk cache): a stream unpacks over a
gigabyte of models, and the kernel's writeback of one run's made the next one's unpacks twice as
slow, so the second policy of a pair lost whatever it was.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

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
    #: Mean milliseconds per stage (``_STAGES``) over the stream.
    stages: dict[str, float] = field(default_factory=dict)
    #: CPU seconds of the gateway and of its container(s) over the stream.
    cpu: tuple[float, float] = (0.0, 0.0)

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
            f"errors {sum(self.errors.values())} {self.errors or ''}\n"
            f"         mean ms: fetch+unpack {self.stages.get('downloading', 0):.1f}, "
            f"container load {self.stages.get('loading', 0):.1f}, "
            f"unload {self.stages.get('unloading', 0):.1f}, "
            f"a miss's wait {self.stages.get('loading_wait', 0):.1f}; CPU ms per request: "
            f"gateway {1e3 * self.cpu[0] / self.requests:.2f}, "
            f"container {1e3 * self.cpu[1] / self.requests:.2f}"
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
        stages_before = _stages(first)
        cpu_before = _cpu(path)

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
        # What earlier steps wrote (the store, a run before) reaches the disk now, not while
        # this stream runs: every policy starts from the same clean page cache.
        os.sync()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        cpu_after = _cpu(path)
        last = Client(host, port)  # the first one's connection idled past the keep-alive
        after = _counts(last)
        stages = _stages(last)
        info = last.get_json(f"/endpoints/{endpoint}/models")["Containers"][0]
    if errors:  # what the gateway and its container said about them (the folder goes)
        said = (work / f"{path.stem}.log").read_text(errors="replace").splitlines()
        print("\n".join(f"         log: {line[:300]}" for line in said[-20:]))
    hits, loads, evictions = (a - b for a, b in zip(after, before, strict=True))
    means = {
        stage: 1e3 * (total - stages_before[stage][0]) / max(count - stages_before[stage][1], 1)
        for stage, (total, count) in stages.items()
    }
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
    return Outcome(
        policy, len(stream), seconds, latencies, errors, hits, loads, evictions,
        info["LoadedModelCount"], means, cpu,
    )  # fmt: skip


_STAGES = ("downloading", "loading", "unloading", "loading_wait")


def _stages(client: Client) -> dict[str, tuple[float, float]]:
    """Each stage's (sum, count) of seconds so far."""
    return {
        stage: (
            metric(client, f"tandem_model_{stage}_seconds_sum"),
            metric(client, f"tandem_model_{stage}_seconds_count"),
        )
        for stage in _STAGES
    }


def _cpu(spec_path: Path) -> tuple[float, float]:
    """CPU seconds so far of the ``tandem serve`` of ``spec_path`` and of its descendants."""
    for proc in psutil.Process().children():
        try:
            if str(spec_path) not in proc.cmdline():
                continue
            own = proc.cpu_times()
            below = 0.0
            for child in proc.children(recursive=True):
                times = child.cpu_times()
                below += times.user + times.system
            return own.user + own.system, below
        except psutil.Error:
            continue
    return 0.0, 0.0


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
