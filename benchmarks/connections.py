"""Clients that open a new connection per request (``urllib``, ``curl`` in a loop), for gateway.py.

One client process alternates request by request between the container called straight and the
gateway, once with a new connection per request and once over one kept-alive connection each,
so that drift in the machine's load hits all four alike. The figure is what the gateway adds to
the p50 in each mode, measured in the same run.
"""

from __future__ import annotations

import http.client
import statistics
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionCosts:
    """p50 in ms: straight and through the gateway, new connection per request and kept alive."""

    fresh_straight: float
    fresh_gateway: float
    kept_straight: float
    kept_gateway: float

    @property
    def fresh_added(self) -> float:
        return self.fresh_gateway - self.fresh_straight

    @property
    def kept_added(self) -> float:
        return self.kept_gateway - self.kept_straight


def _fresh(url: str, body: bytes, content_type: str) -> float:
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
        assert answer.status == 200, answer.status
    return (time.perf_counter() - started) * 1000


def _kept(conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": content_type})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
    return (time.perf_counter() - started) * 1000


def connection_costs(
    straight: str, gateway: str, body: bytes, content_type: str, requests: int
) -> ConnectionCosts:
    """``requests`` of each kind, interleaved; the medians."""
    urls = {"straight": straight, "gateway": gateway}
    parts = {k: urllib.parse.urlsplit(u) for k, u in urls.items()}
    conns = {k: http.client.HTTPConnection(p.hostname or "", p.port) for k, p in parts.items()}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(max(requests // 10, 10)):  # warm both sides' pools
            for key, url in urls.items():
                _fresh(url, body, content_type)
                _kept(conns[key], parts[key].path, body, content_type)
        for _ in range(requests):
            for key, url in urls.items():
                times.setdefault(("fresh", key), []).append(_fresh(url, body, content_type))
                took = _kept(conns[key], parts[key].path, body, content_type)
                times.setdefault(("kept", key), []).append(took)
    finally:
        for conn in conns.values():
            conn.close()
    p50 = {key: statistics.median(values) for key, values in times.items()}
    return ConnectionCosts(
        p50[("fresh", "straight")],
        p50[("fresh", "gateway")],
        p50[("kept", "straight")],
        p50[("kept", "gateway")],
    )
