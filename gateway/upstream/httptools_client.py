"""The ``httptools`` upstream: keep-alive HTTP/1.1 on asyncio protocols, parsed by llhttp.

The default, chosen by measurement (benchmarks/gateway.py): a gateway talks plain HTTP/1.1 to
containers on a trusted network, so a general client's features (redirects, cookies, proxies,
TLS, tracing, middlewares) are per-request cost with no use. This one writes each request with one
``transport.write`` and parses the answer with httptools (the parser uvicorn's server side uses),
in a few microseconds of Python per request; aiohttp's client spends several times that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from gateway.upstream import (
    UpstreamBodyTooLarge,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

#: An idle connection older than this is closed rather than reused: servers drop idle ones after
#: a few seconds (uvicorn 5); a request that races such a close is sent again (see ``_send``).
IDLE_SECONDS = 4.0
#: Bodies above this are written after the head instead of being copied into one buffer.
_COPY_LIMIT = 64 * 1024


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated header keeps its last value."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # keys lower-cased

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class _Connection(asyncio.Protocol):
    """One keep-alive connection; answers one request at a time into ``waiter``."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[UpstreamResponse] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.received = False  # any byte of an answer to the request in flight
        self.max_body = 0
        self._reset()

    def _reset(self) -> None:
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.error: Exception | None = None

    def send(self, data: bytes, body: bytes, max_body: int) -> asyncio.Future[UpstreamResponse]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.received = False
        self.max_body = max_body
        self._reset()
        if len(body) <= _COPY_LIMIT:
            self.transport.write(data + body)
        else:
            self.transport.write(data)
            self.transport.write(body)
        return self.waiter

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing was asked: a confused server, not to be trusted again
            self._close()
            return
        self.received = True
        if self.error is not None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamUnavailable(f"malformed answer: {exc}"))
            return
        if self.error is not None:
            self._fail(self.error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        # An answer delimited by the end of the connection (no length, not chunked) is whole now;
        # a chunked one, or one with a length, that got here is cut short.
        if (
            self.headers_done
            and self.error is None
            and "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "").lower()
        ):
            self.on_message_complete()
            return
        reason = f"{type(exc).__name__}: {exc}" if exc else "connection closed"
        waiter.set_exception(UpstreamUnavailable(f"{reason} before a whole answer"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = text
        if key == "content-length" and text.isdigit() and int(text) > self.max_body:
            self.error = UpstreamBodyTooLarge(self.max_body)

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            self.error = UpstreamBodyTooLarge(self.max_body)
        elif self.error is None:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue ...): the real one follows
            self._reset()
            return
        waiter = self.waiter
        if self.error is not None or waiter is None or waiter.done():
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        if not self.parser.should_keep_alive():
            self._close()
        waiter.set_result(UpstreamResponse(status, Headers(self.headers), body))

    def _fail(self, error: Exception) -> None:
        self._close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttptoolsUpstream:
    """A pool of keep-alive connections to one container (``http://host:port`` only)."""

    def __init__(self, base_url: str, *, max_connections: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"the httptools upstream speaks plain http://host:port only, not {base_url!r}; "
                "choose the aiohttp upstream for https"
            )
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path
        self._host_line = f"Host: {parts.netloc}\r\n".encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float, max_body: int
    ) -> UpstreamResponse:
        return await self._send(b"POST", path, body, headers, timeout, max_body)

    async def get(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send(b"GET", path, None, {}, timeout, max_body)

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        return await self._send(b"DELETE", path, None, {}, timeout, max_body)

    def _head(
        self, method: bytes, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> bytes:
        lines = [method, b" ", (self._prefix + path).encode("latin-1"), b" HTTP/1.1\r\n"]
        lines.append(self._host_line)
        if body is not None:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name} has a line break")
            lines += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _send(
        self,
        method: bytes,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        max_body: int,
    ) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        head = self._head(method, path, body, headers)
        async with self._slots:
            for attempt in (1, 2):
                conn = self._reuse(loop.time())
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(deadline)
                waiter = conn.send(head, body or b"", max_body)
                timer = loop.call_at(deadline, _expire, waiter)
                try:
                    answer = await waiter
                except UpstreamUnavailable:
                    # A reused connection closed by the server as the request went out, before
                    # it read a byte of it: the request never ran, so send it once more.
                    if reused and not conn.received and attempt == 1 and loop.time() < deadline:
                        continue
                    raise
                except UpstreamTimeout as exc:
                    conn._close()
                    raise UpstreamTimeout(
                        f"no answer from {self.base_url} within {timeout:.3g}s"
                    ) from exc
                except asyncio.CancelledError:
                    conn._close()  # the answer may still come: this connection is spent
                    raise
                finally:
                    timer.cancel()
                    conn.waiter = None
                    if conn.closed:
                        self._open.discard(conn)
                if not conn.closed:
                    conn.idle_since = loop.time()
                    self._idle.append(conn)
                else:
                    self._open.discard(conn)
                return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _reuse(self, now: float) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()  # the most recent: the least likely to be timed out by the server
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn._close()
            self._open.discard(conn)
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(_Connection, self._host, self._port)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self.base_url}: no connection in time") from exc
        except OSError as exc:
            raise UpstreamUnavailable(f"{self.base_url}: {exc}") from exc
        self._open.add(conn)
        return conn

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn._close()
        self._open.clear()
        self._idle.clear()


def _expire(waiter: asyncio.Future[UpstreamResponse]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("timed out"))


def create(base_url: str, *, max_connections: int = 100) -> HttptoolsUpstream:
    return HttptoolsUpstream(base_url, max_connections=max_connections)
