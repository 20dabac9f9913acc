"""Soak: a steady request rate for a long time; errors, p99 drift and the gateway's memory growth.

    python -m benchmarks.reliability.soak [--duration 600] [--rate 50] [--users 16]

Goal: 0 errors, and the gateway's resident memory at the end within 5% of what it was after a
warm-up (its containers are separate processes and not counted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from benchmarks.reliability.common import (
    Gateway,
    contract_container,
    gateway,
    load_spec,
    parser,
    print_result,
    write_result,
)
from gateway.ops.loadtest import LoadSpec, run_load

MAX_GROWTH_PCT = 5.0


def run(
    duration: float = 600.0,
    *,
    rate: float = 50.0,
    users: int = 16,
    warmup: float = 10.0,
    window: float = 30.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    with gateway({"model": contract_container()}, workdir) as served:
        return asyncio.run(_soak(served, duration, rate, users, warmup, window))


async def _soak(
    served: Gateway, duration: float, rate: float, users: int, warmup: float, window: float
) -> dict[str, Any]:
    def load(seconds: float) -> LoadSpec:
        return load_spec(served, "model", seconds, users=users, rate=rate)

    warm = await run_load(load(warmup))
    rss_start = served.rss()
    rss: list[int] = [rss_start]

    async def sample_memory() -> None:
        while True:
            await asyncio.sleep(1.0)
            rss.append(served.rss())

    sampler = asyncio.create_task(sample_memory())
    try:
        result = await run_load(load(duration))
    finally:
        sampler.cancel()
    rss_end = served.rss()
    windows = [w for w in result.windows(window) if w["start"] + window <= duration]
    first = windows[0]["p99"] if windows else result.percentile(99)
    last = windows[-1]["p99"] if windows else result.percentile(99)
    growth = (rss_end - rss_start) / rss_start * 100.0
    summary = result.summary()
    return {
        "check": "soak",
        "duration_s": duration,
        "rate": rate,
        "users": users,
        "warmup_requests": warm.requests,
        "warmup_failures": warm.failures,
        "requests": result.requests,
        "failures": result.failures,
        "errors": summary["errors"],
        "achieved_rps": summary["rps"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "p99_first_window_ms": round(first * 1000, 3),
        "p99_last_window_ms": round(last * 1000, 3),
        "p99_drift_pct": round((last - first) / first * 100.0, 1) if first else 0.0,
        "model_latency_ms": summary["model_latency_ms"],
        "overhead_latency_ms": summary["overhead_latency_ms"],
        "rss_start_mib": round(rss_start / 2**20, 2),
        "rss_end_mib": round(rss_end / 2**20, 2),
        "rss_max_mib": round(max(rss) / 2**20, 2),
        "rss_growth_pct": round(growth, 2),
        "restarts": served.restarts(),
        "windows": [
            {k: round(v * 1000, 3) if k.startswith("p") else v for k, v in w.items()}
            for w in windows
        ],
        "passed": result.failures == 0 and warm.failures == 0 and growth < MAX_GROWTH_PCT,
    }


def main() -> None:
    args = parser(__doc__ or "", 600.0)
    args.add_argument("--rate", type=float, default=50.0, help="requests a second (%(default)s)")
    args.add_argument("--users", type=int, default=16, help="concurrent users (%(default)s)")
    ns = args.parse_args()
    result = run(ns.duration, rate=ns.rate, users=ns.users, workdir=ns.workdir)
    print_result("soak", result)
    print(f"  -> {write_result('soak', result)}")


if __name__ == "__main__":
    main()
