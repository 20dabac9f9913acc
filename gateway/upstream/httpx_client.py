"""The ``httpx`` upstream: kept so the choice stays a measurement (benchmarks/gateway.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from gateway.upstream import (
    UpstreamBodyTooLarge,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# httpx adds these to every request; the container should see only what the gateway forwards.
_DEFAULT_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")


class HttpxUpstream:
    """One pooled keep-alive ``httpx.AsyncClient`` for one container."""

    def __init__(self, base_url: str, *, max_connections: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=None,
            follow_redirects=False,
        )
        for name in _DEFAULT_HEADERS:
            del self._client.headers[name]

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float, max_body: int
    ) -> UpstreamResponse:
        request = self._client.build_request("POST", path, content=body, headers=headers)
        return await self._send(request, timeout, max_body)

    async def get(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send(self._client.build_request("GET", path), timeout, max_body)

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send(self._client.build_request("DELETE", path), timeout, max_body)

    async def _send(
        self, request: httpx.Request, timeout: float, max_body: int
    ) -> UpstreamResponse:
        # httpx's timeouts are per operation; the caller's is a total, so one asyncio timeout.
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(request, max_body)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer from {self.base_url} within {timeout:.3g}s") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{self.base_url}: {exc.__class__.__name__}: {exc}") from exc

    async def _exchange(self, request: httpx.Request, max_body: int) -> UpstreamResponse:
        response = await self._client.send(request, stream=True)
        try:
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_body:
                raise UpstreamBodyTooLarge(max_body)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_body:
                    raise UpstreamBodyTooLarge(max_body)
                chunks.append(chunk)
        finally:
            await response.aclose()
        return UpstreamResponse(response.status_code, response.headers, b"".join(chunks))

    async def aclose(self) -> None:
        await self._client.aclose()


def create(base_url: str, *, max_connections: int = 100) -> HttpxUpstream:
    return HttpxUpstream(base_url, max_connections=max_connections)
