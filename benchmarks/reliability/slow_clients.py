"""Slow clients: connections that dribble their headers or their body must not starve others.

    python -m benchmarks.reliability.slow_clients [--duration 60] [--slow 100]

``--slow`` connections send their headers a byte at a time and as many send their body a byte at a
time (slowloris and slow POST), reconnecting whenever the gateway cuts them off, while a few
fast users send ordinary requests. Expected: every fast request succeeds, at latencies close to
the baseline measured without slow clients; the gateway closes each slow connection with 408 once
its header or body deadline has passed (``TANDEM_HEADER_TIMEOUT``, ``TANDEM_BODY_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.reliability.common import (
    ENDPOINT,
    Gateway,
    contract_container,
    gateway,
    load_spec,
    parser,
    print_result,
    write_result,
)
from gateway.ops.loadtest import LoadSpec, run_load

PATH = f"/endpoints/{ENDPOINT}/invocations"
SLOW_HEADERS = f"POST {PATH} HTTP/1.1\r\nHost: gateway\r\nX-Slow: ".encode()
SLOW_BODY = (
    f"POST {PATH} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
    "X-Amzn-SageMaker-Target-Container-Hostname: model\r\nContent-Length: 100000\r\n\r\n"
).encode()
#: Slack on top of a deadline before a connection counts as held too long.
SLACK_S = 5.0


def run(
    duration: float = 60.0,
    *,
    slow: int = 100,
    dribble: float = 1.0,
    header_timeout: float = 10.0,
    body_timeout: float = 20.0,
    baseline: float = 5.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    env = {"TANDEM_HEADER_TIMEOUT": str(header_timeout), "TANDEM_BODY_TIMEOUT": str(body_timeout)}
    with gateway({"model": contract_container()}, workdir, env=env) as served:
        figures = asyncio.run(_slow(served, duration, slow, dribble, baseline))
        figures["restarts"] = served.restarts()
    longest = max(header_timeout, body_timeout) + SLACK_S
    figures.update(
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        passed=(
            figures["fast_requests"] > 0
            and figures["fast_failures"] == 0
            and figures["max_slow_lifetime_s"] <= longest
        ),
    )
    return figures


async def _slow(
    served: Gateway, duration: float, slow: int, dribble: float, baseline: float
) -> dict[str, Any]:
    def fast(seconds: float) -> LoadSpec:
        return load_spec(served, "model", seconds, users=4, timeout=30.0)

    alone = await run_load(fast(baseline))
    address = urlsplit(served.url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    stop_at = time.monotonic() + duration
    records: list[dict[str, Any]] = []

    async def attacker(prefix: bytes, kind: str) -> None:
        while time.monotonic() < stop_at:
            records.append(await _dribble(host, port, prefix, kind, dribble, stop_at))

    attackers = [
        asyncio.create_task(attacker(prefix, kind))
        for prefix, kind in ((SLOW_HEADERS, "headers"), (SLOW_BODY, "body"))
        for _ in range(slow)
    ]
    await asyncio.sleep(min(dribble * 2, duration / 4))  # let every slow connection open
    attacked = await run_load(fast(max(duration - dribble * 2, 1.0)))
    await asyncio.gather(*attackers)

    def count(kind: str, status: str | None) -> int:
        return sum(r["kind"] == kind and r["status"] == status for r in records)

    cut = [r for r in records if r["status"] is not None]
    return {
        "check": "slow_clients",
        "duration_s": duration,
        "slow_connections_per_kind": slow,
        "dribble_s": dribble,
        "baseline_requests": alone.requests,
        "baseline_p50_ms": round(alone.percentile(50) * 1000, 3),
        "baseline_p99_ms": round(alone.percentile(99) * 1000, 3),
        "fast_requests": attacked.requests,
        "fast_failures": attacked.failures,
        "fast_errors": dict(attacked.errors()),
        "fast_p50_ms": round(attacked.percentile(50) * 1000, 3),
        "fast_p99_ms": round(attacked.percentile(99) * 1000, 3),
        "slow_connections": len(records),
        "slow_headers_408": count("headers", "408"),
        "slow_body_408": count("body", "408"),
        "slow_other_answers": sorted({r["status"] for r in cut if r["status"] != "408"}),
        "slow_still_open_at_end": sum(r["status"] is None for r in records),
        "max_slow_lifetime_s": round(max((r["lifetime"] for r in cut), default=0.0), 2),
    }


async def _dribble(
    host: str, port: int, prefix: bytes, kind: str, dribble: float, stop_at: float
) -> dict[str, Any]:
    """One slow connection: a byte every ``dribble`` s until the gateway answers or time ends."""
    opened = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    answer = asyncio.ensure_future(reader.read(256))
    status: str | None = None
    try:
        writer.write(prefix)
        while time.monotonic() < stop_at:
            done, _ = await asyncio.wait({answer}, timeout=dribble)
            if done:
                break
            writer.write(b"a")
            await writer.drain()
    except ConnectionError:
        pass
    if not answer.done():
        await asyncio.wait({answer}, timeout=0.2)
    if answer.done() and answer.exception() is None:
        words = answer.result().split(b" ", 2)
        status = words[1].decode() if len(words) > 1 else "closed"
    else:
        answer.cancel()
    writer.close()
    return {"kind": kind, "status": status, "lifetime": time.monotonic() - opened}


def main() -> None:
    args = parser(__doc__ or "", 60.0)
    args.add_argument("--slow", type=int, default=100, help="slow connections of each kind")
    args.add_argument("--header-timeout", type=float, default=10.0)
    args.add_argument("--body-timeout", type=float, default=20.0)
    ns = args.parse_args()
    result = run(
        ns.duration,
        slow=ns.slow,
        header_timeout=ns.header_timeout,
        body_timeout=ns.body_timeout,
        workdir=ns.workdir,
    )
    print_result("slow_clients", result)
    print(f"  -> {write_result('slow_clients', result)}")


if __name__ == "__main__":
    main()
