"""A container's answer read as it arrives, for InvokeEndpointWithResponseStream.

The pooled clients (``gateway.upstream``) read whole answers, which is what the hot path wants;
a streamed answer is read piece by piece instead, on a connection of its own, so the hot path's
pools are never touched. A connection whose answer ended cleanly is kept for the next stream to
the same container (``StreamConnections``): opening one and having the container accept it cost
about 0.5 ms of the first part (benchmarks/streaming.py). One that did not end cleanly (the client
left, the container broke off, the deadline passed) is closed, which is how the container learns
to stop producing. The request is written with one write and the answer parsed by httptools, as
the pooled default client does: a general client (httpx) spent milliseconds per stream setting
itself up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit

import httptools

from gateway.upstream import UpstreamBodyTooLarge, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.httptools_client import IDLE_SECONDS

_READ = 64 * 1024


class StreamBroken(UpstreamUnavailable):
    """The container closed or reset the connection before its answer ended."""


class _Answer:
    """httptools' callbacks: the head, then the body pieces not yet handed on."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.received = False  # any byte of the answer
        self.head_done = False
        self.done = False
        self.keep_alive = False  # the connection may carry the next request
        self.pieces: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(bytes(body))

    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()  # only known here: llhttp resets after


class StreamedResponse:
    """The container's status and headers, then its body as ``chunks()`` yields it."""

    def __init__(self, answer: _Answer, reader: asyncio.StreamReader) -> None:
        self.status = answer.parser.get_status_code()
        self._answer = answer
        self._reader = reader

    def header(self, name: str) -> str | None:
        """A response header, by case-insensitive name."""
        return self._answer.headers.get(name.lower())

    @property
    def headers(self) -> Mapping[str, str]:
        """All response headers, names lower-cased."""
        return self._answer.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each piece of the body as it arrives; ``StreamBroken`` if it ends early."""
        answer = self._answer
        while True:
            if answer.pieces:
                pieces, answer.pieces = answer.pieces, []
                for piece in pieces:
                    yield piece
            if answer.done:
                return
            await _feed(self._reader, answer, broken=StreamBroken)

    async def read(self, max_body: int) -> bytes:
        """The whole body (an error answer), refused past ``max_body`` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > max_body:
                raise UpstreamBodyTooLarge(max_body)
            parts.append(chunk)
        return b"".join(parts)


async def _feed(
    reader: asyncio.StreamReader,
    answer: _Answer,
    broken: type[UpstreamUnavailable],
) -> None:
    """Read what arrived and parse it; ``broken`` when the connection ended or is garbage."""
    try:
        data = await reader.read(_READ)
    except OSError as exc:
        raise broken(f"{exc.__class__.__name__}: {exc}") from exc
    if not data:
        raise broken("the container closed the connection before its answer ended")
    answer.received = True
    try:
        answer.parser.feed_data(data)
    except httptools.HttpParserError as exc:
        raise broken(f"the container's answer is not valid HTTP: {exc}") from exc


class StreamConnections:
    """Kept-alive connections to the containers, idle between streams, by base URL.

    The newest idle one is reused, as long as it has been idle less than ``IDLE_SECONDS`` (the
    containers' servers drop idle connections after a few seconds). A request on a reused one that
    the server had closed before it read a byte is sent once more on a new one, as the pooled
    client does: the request never ran.
    """

    def __init__(self, *, idle_seconds: float = IDLE_SECONDS, keep: int = 16) -> None:
        self.idle_seconds = idle_seconds
        self.keep = keep  # idle connections kept per URL; more are closed
        self._idle: dict[str, list[_Idle]] = {}

    @asynccontextmanager
    async def post(
        self, base_url: str, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> AsyncIterator[StreamedResponse]:
        """POST ``body`` and yield the answer once its head arrived (within ``timeout`` s).

        Reading the body is not bounded here: the caller's deadline covers the whole stream.
        """
        base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        while True:
            reused = self._reuse(base_url, loop.time())
            reader, writer = reused or await _connect(base_url, host, port, deadline)
            answer = _Answer()
            try:
                writer.write(request)
                await _read_head(reader, answer, base_url, deadline)
            except UpstreamUnavailable:
                _close(writer)
                if reused is not None and not answer.received and loop.time() < deadline:
                    continue  # the server had closed it: the request never ran
                raise
            except BaseException:
                _close(writer)
                raise
            break
        response = StreamedResponse(answer, reader)
        try:
            yield response
        except BaseException:
            _close(writer)
            raise
        if answer.done and answer.keep_alive and not reader.at_eof():
            self._release(base_url, reader, writer, loop.time())
        else:
            _close(writer)

    def _reuse(
        self, base_url: str, now: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        idle = self._idle.get(base_url)
        while idle:
            reader, writer, since = idle.pop()  # the newest: the least likely to be timed out
            if now - since < self.idle_seconds and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            _close(writer)
        return None

    def _release(
        self, base_url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, now: float
    ) -> None:
        idle = self._idle.setdefault(base_url, [])
        idle.append((reader, writer, now))
        while len(idle) > self.keep:
            _close(idle.pop(0)[1])

    def drop(self, base_url: str) -> None:
        """Close the idle connections to ``base_url`` (a container that moved or went away)."""
        for _, writer, _ in self._idle.pop(base_url.rstrip("/"), []):
            _close(writer)

    def aclose(self) -> None:
        """Close every idle connection; streams in flight close theirs as they end."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, writer, _ in connections:
                _close(writer)


_Idle = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]


async def _connect(
    base_url: str, host: str, port: int, deadline: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{base_url}: no connection in time") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"{base_url}: {exc.__class__.__name__}: {exc}") from exc
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _read_head(
    reader: asyncio.StreamReader, answer: _Answer, base_url: str, deadline: float
) -> None:
    try:
        async with asyncio.timeout_at(deadline):
            while not answer.head_done:
                await _feed(reader, answer, broken=UpstreamUnavailable)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{base_url}: no answer in time") from exc


def _close(writer: asyncio.StreamWriter) -> None:
    with suppress(RuntimeError):  # the loop is already closed
        writer.close()
