"""Killed containers: SIGKILL one container under load every ``interval`` seconds.

    python -m benchmarks.reliability.kill [--duration 300] [--interval 30] [--rate 20]

Two containers of one Direct endpoint take load at a steady rate; the ``victim`` is killed with
SIGKILL again and again while the ``bystander`` keeps serving. Expected: requests to the victim
fail fast with 503 ServiceUnavailable while it is down and succeed again once the supervisor has
restarted it; the bystander sees no error; no request hangs (each gets an answer).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
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
from gateway.ops.loadtest import NO_ANSWER, LoadResult, run_load

#: A failure answered later than this is not "fast".
FAST_S = 5.0


def run(
    duration: float = 300.0,
    *,
    interval: float = 30.0,
    rate: float = 20.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    containers = {"victim": contract_container(), "bystander": contract_container()}
    with gateway(containers, workdir) as served:
        return asyncio.run(_kill(served, duration, interval, rate))


async def _kill(served: Gateway, duration: float, interval: float, rate: float) -> dict[str, Any]:
    kills: list[float] = []  # seconds from the start of the load

    async def killer(start: float) -> None:
        at = interval
        while at < duration - 1.0:
            await asyncio.sleep(max(start + at - time.perf_counter(), 0.0))
            pid = await asyncio.to_thread(served.container_pid, "victim")
            os.kill(pid, signal.SIGKILL)
            kills.append(time.perf_counter() - start)
            at += interval

    start = time.perf_counter()
    victim, bystander, _ = await asyncio.gather(
        run_load(load_spec(served, "victim", duration, users=8, rate=rate)),
        run_load(load_spec(served, "bystander", duration, users=8, rate=rate)),
        killer(start),
    )
    healthy = await _until_healthy(served, timeout=60.0)
    return _figures(served, victim, bystander, kills, duration, interval, rate, healthy)


async def _until_healthy(served: Gateway, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(served.all_healthy):
            return True
        await asyncio.sleep(0.2)
    return False


def _figures(
    served: Gateway,
    victim: LoadResult,
    bystander: LoadResult,
    kills: list[float],
    duration: float,
    interval: float,
    rate: float,
    healthy: bool,
) -> dict[str, Any]:
    failed = [s for s in victim.samples if not s.ok]
    recoveries = []
    for kill in kills:
        after = [s.at + s.latency for s in victim.samples if s.ok and s.at >= kill]
        recoveries.append(round(min(after) - kill, 3) if after else None)
    restarts = served.restarts()
    statuses = sorted({s.status for s in failed})
    slowest_failure = max((s.latency for s in failed), default=0.0)
    return {
        "check": "kill",
        "duration_s": duration,
        "interval_s": interval,
        "rate_per_container": rate,
        "kills": len(kills),
        "victim_requests": victim.requests,
        "victim_ok": victim.requests - victim.failures,
        "victim_failures": victim.failures,
        "victim_errors": dict(victim.errors()),
        "victim_failure_statuses": statuses,
        "victim_slowest_failure_ms": round(slowest_failure * 1000, 1),
        "victim_unanswered": sum(s.status == NO_ANSWER for s in victim.samples),
        "recovery_s": recoveries,
        "max_recovery_s": max((r for r in recoveries if r is not None), default=None),
        "bystander_requests": bystander.requests,
        "bystander_failures": bystander.failures,
        "bystander_p99_ms": round(bystander.percentile(99) * 1000, 3),
        "restarts": restarts,
        "healthy_at_end": healthy,
        "passed": (
            bystander.failures == 0
            and statuses == [503]  # the victim was down at least once, and said so with 503
            and slowest_failure < FAST_S
            and all(r is not None for r in recoveries)
            and restarts.get("victim") == len(kills)
            and restarts.get("bystander") == 0
            and healthy
        ),
    }


def main() -> None:
    args = parser(__doc__ or "", 300.0)
    args.add_argument("--interval", type=float, default=30.0, help="seconds between kills")
    args.add_argument("--rate", type=float, default=20.0, help="requests a second per container")
    ns = args.parse_args()
    result = run(ns.duration, interval=ns.interval, rate=ns.rate, workdir=ns.workdir)
    print_result("kill", result)
    print(f"  -> {write_result('kill', result)}")


if __name__ == "__main__":
    main()
