"""One upstream abstraction: a pooled keep-alive HTTP client for one container.

The gateway never parses payloads, so the interface is bytes in, bytes out. Three backends exist:
``httptools`` (default, chosen by measurement: see benchmarks/gateway.py), ``aiohttp`` and
``httpx``; each is imported only when asked for by name, and each translates its library's
exceptions into the ones below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pipelines.errors import TandemError

#: Backend name -> module under ``gateway.upstream`` that defines ``create(base_url, ...)``.
BACKENDS = {
    "httptools": "httptools_client",
    "aiohttp": "aiohttp_client",
    "httpx": "httpx_client",
}


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    #: Case-insensitive mapping of the response headers.
    headers: Mapping[str, str]
    body: bytes


class UpstreamError(TandemError):
    """Base of what an upstream raises; the dispatcher turns these into client-facing errors."""


class UpstreamUnavailable(UpstreamError):
    """The container could not be reached: refused, reset, closed before answering."""


class UpstreamTimeout(UpstreamError):
    """The container did not answer within the time given."""


class UpstreamBodyTooLarge(UpstreamError):
    """The answer was larger than the limit; raised before reading it whole."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")
        self.limit = limit


class Upstream(Protocol):
    base_url: str

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float, max_body: int
    ) -> UpstreamResponse:
        """POST ``body``; read at most ``max_body`` bytes back, all within ``timeout`` s."""
        ...

    async def get(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse: ...

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


def create_upstream(kind: str, base_url: str, *, max_connections: int = 100) -> Upstream:
    """Build the ``kind`` client for ``base_url``; the backend module is imported only now."""
    try:
        module_name = BACKENDS[kind]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown upstream client {kind!r}; choose one of: {known}") from None
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as exc:
        raise ImportError(
            f"upstream client {kind!r} needs the {kind!r} package ({exc}); "
            f"install it with `pip install {kind}`"
        ) from exc
    upstream: Upstream = module.create(base_url, max_connections=max_connections)
    return upstream
