"""The ``aiohttp`` upstream: a full client (https too), the choice when httptools does not fit."""

from __future__ import annotations

import io
from collections.abc import Mapping

import aiohttp
from yarl import URL

from gateway.upstream import (
    UpstreamBodyTooLarge,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# The container sees only the headers the gateway forwards: no invented Content-Type or Accept, and
# no compression to undo on a loopback hop.
_SKIP_AUTO_HEADERS = ("Content-Type", "Accept", "Accept-Encoding", "User-Agent")
_LARGE_BODY = 1024 * 1024


class AiohttpUpstream:
    """One pooled keep-alive session for one container."""

    def __init__(self, base_url: str, *, max_connections: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(limit=max_connections, enable_cleanup_closed=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=True,
        )
        # Joining URLs costs more than the rest of a request's client side; do it once per path.
        self._urls: dict[str, URL] = {}

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float, max_body: int
    ) -> UpstreamResponse:
        # aiohttp writes big bodies from a BytesIO in chunks, yielding to the loop in between.
        data = body if len(body) <= _LARGE_BODY else io.BytesIO(body)
        return await self._send("POST", path, data, headers, timeout, max_body)

    async def get(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send("GET", path, None, {}, timeout, max_body)

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send("DELETE", path, None, {}, timeout, max_body)

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | io.BytesIO | None,
        headers: Mapping[str, str],
        timeout: float,
        max_body: int,
    ) -> UpstreamResponse:
        try:
            async with self._session.request(
                method,
                self._url(path),
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                length = resp.content_length
                if length is not None and length > max_body:
                    raise UpstreamBodyTooLarge(max_body)
                if length is not None:
                    data = await resp.read()
                else:
                    data = await _read_limited(resp.content, max_body)
                return UpstreamResponse(resp.status, resp.headers, data)
        except UpstreamError:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer from {self.base_url} within {timeout:.3g}s") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{self.base_url}: {exc.__class__.__name__}: {exc}") from exc
        except OSError as exc:
            raise UpstreamUnavailable(f"{self.base_url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._session.close()


async def _read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        size += len(chunk)
        if size > limit:
            raise UpstreamBodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def create(base_url: str, *, max_connections: int = 100) -> AiohttpUpstream:
    return AiohttpUpstream(base_url, max_connections=max_connections)
