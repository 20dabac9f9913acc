"""The HTTP/1.1 plumbing of the multi-process router: a server protocol and pooled worker links.

Raw asyncio protocols over httptools instead of an ASGI stack, because every invocation of a
multi-process container crosses this hop: a request is parsed once, rebuilt with its own
``Content-Length`` and written to the worker; the worker's answer goes back byte for byte as it
arrives (a streamed, chunked answer stays streamed; one the worker breaks off is broken off).
Requests on one client connection are answered in order (pipelining works, one at a time).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

log = logging.getLogger(__name__)
_SKIP = frozenset((b"content-length", b"transfer-encoding", b"expect"))
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Payload Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    507: b"Insufficient Storage",
}


@dataclass
class Request:
    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    #: Where a forwarded answer's bytes go as they arrive (the client's connection).
    sink: Callable[[bytes], None] | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.url.partition(b"?")[0].decode("latin-1")

    @property
    def query(self) -> str:
        return self.url.partition(b"?")[2].decode("latin-1")

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def encode(self) -> bytes:
        """The request as the worker gets it: same line and headers, a fresh Content-Length."""
        parts = [self.method, b" ", self.url, b" HTTP/1.1\r\n"]
        for key, value in self.headers:
            if key.lower() not in _SKIP:
                parts += [key, b": ", value, b"\r\n"]
        parts += [b"content-length: ", str(len(self.body)).encode(), b"\r\n\r\n", self.body]
        return b"".join(parts)


@dataclass
class Response:
    status: int
    raw: bytes
    body: bytes = b""
    #: Already written to the request's sink as it arrived.
    sent: bool = False


class BrokenAnswer(Exception):
    """The worker broke off an answer already partly forwarded: the client's must break too."""


def respond(status: int, body: bytes, content_type: bytes = b"application/json") -> Response:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        content_type,
        len(body),
    )
    return Response(status, head + body, body)


def error(status: int, code: str, message: str) -> Response:
    """The contract's error shape, ``{"error": code, "message": text}``."""
    return respond(status, json.dumps({"error": code, "message": message}).encode())


Handler = Callable[[Request], Awaitable[Response]]


class ServerProtocol(asyncio.Protocol):
    """One client connection: parse requests, answer each through ``handler`` in order."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        self._handler = handler
        self._max_body = max_body
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._busy = False
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._close_with(error(400, "bad_request", f"malformed HTTP request: {exc}"))
        except _TooLarge:
            self._close_with(
                error(413, "payload_too_large", f"body is over the {self._max_body}-byte limit")
            )

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", [], [], 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        # curl waits a second for this before sending a body over 1 KiB; the worker gets it all.
        expect = next((v for k, v in self._headers if k.lower() == b"expect"), None)
        if expect is not None and expect.lower() == b"100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            raise _TooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        request = Request(
            parser.get_method(),
            self._url,
            self._headers,
            b"".join(self._body),
            parser.should_keep_alive(),
        )
        self._queue.append(request)
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        try:
            while self._queue:
                request = self._queue.popleft()
                request.sink = self._write
                try:
                    response = await self._handler(request)
                except BrokenAnswer:
                    if self._transport is not None:
                        self._transport.close()
                    return
                except Exception as exc:
                    log.exception("router: %s %s failed", request.method, request.url)
                    response = error(500, "internal_error", f"internal error: {type(exc).__name__}")
                transport = self._transport
                if transport is None or transport.is_closing():
                    return
                if not response.sent:
                    transport.write(response.raw)
                if not request.keep_alive:
                    transport.close()
                    return
        finally:
            self._busy = False

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close_with(self, response: Response) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response.raw)
            self._transport.close()


class _TooLarge(Exception):
    pass


class _Link(asyncio.Protocol):
    """One keep-alive connection to a worker; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._raw: list[bytes] = []
        self._body: list[bytes] = []
        self._done: asyncio.Future[Response] | None = None
        self._forward: Callable[[bytes], None] | None = None
        self._forwarded = False
        self.reusable = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._done is not None and not self._done.done():
            if self._forwarded:
                self._done.set_exception(BrokenAnswer())
            else:
                self._done.set_exception(
                    ConnectionError(f"the worker closed the connection: {exc}")
                )

    def data_received(self, data: bytes) -> None:
        if self._forward is not None:
            self._forward(data)
            self._forwarded = True
        else:
            self._raw.append(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(ConnectionError(f"bad answer from the worker: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def on_body(self, body: bytes) -> None:
        if self._forward is None:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        raw, body = b"".join(self._raw), b"".join(self._body)
        self._raw, self._body = [], []
        sent, self._forward = self._forward is not None, None
        if self._done is not None and not self._done.done():
            self._done.set_result(Response(status, raw, body, sent=sent))

    def send(
        self, payload: bytes, forward: Callable[[bytes], None] | None
    ) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.reusable = False
        self._forward, self._forwarded = forward, False
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self._done


class WorkerLinks:
    """Pooled keep-alive connections to one worker's private port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Link] = []

    async def call(self, request: Request, *, forward: bool = False) -> Response:
        """The worker's answer; with ``forward``, its bytes go to ``request.sink`` as they come."""
        link = await self._take()
        try:
            response = await link.send(request.encode(), request.sink if forward else None)
        except BaseException:
            if link.transport is not None:
                link.transport.close()
            raise
        if link.reusable and link.transport is not None and not link.transport.is_closing():
            self._idle.append(link)
        elif link.transport is not None:
            link.transport.close()
        return response

    async def _take(self) -> _Link:
        while self._idle:
            link = self._idle.pop()
            if link.transport is not None and not link.transport.is_closing():
                return link
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(_Link, self.host, self.port)
        return link

    def close(self) -> None:
        for link in self._idle:
            if link.transport is not None:
                link.transport.close()
        self._idle.clear()
