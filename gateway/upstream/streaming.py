"""A container's answer read as it arrives, for InvokeEndpointWithResponseStream.

The pooled clients (``gateway.upstream``) read whole answers, which is what the hot path wants;
a streamed answer is read piece by piece instead, on a connection of its own, so the hot path's
pools are never touched. A stream lasts long next to opening a connection, so each stream opens
one and closes it with the stream: nothing is pooled, nothing is left open when the app stops.
The request is written with one write and the answer parsed by httptools, as the pooled default
client does: a general client (httpx) spent milliseconds per stream setting itself up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit

import httptools

from gateway.upstream import UpstreamBodyTooLarge, UpstreamTimeout, UpstreamUnavailable

_READ = 64 * 1024


class StreamBroken(UpstreamUnavailable):
    """The container closed or reset the connection before its answer ended."""


class _Answer:
    """httptools' callbacks: the head, then the body pieces not yet handed on."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.done = False
        self.pieces: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(bytes(body))

    def on_message_complete(self) -> None:
        self.done = True


class StreamedResponse:
    """The container's status and headers, then its body as ``chunks()`` yields it."""

    def __init__(
        self, status: int, answer: _Answer, reader: asyncio.StreamReader, parser: object
    ) -> None:
        self.status = status
        self._answer = answer
        self._reader = reader
        self._parser = parser

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
            await _feed(self._reader, self._parser, broken=StreamBroken)

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
    reader: asyncio.StreamReader, parser: object, broken: type[UpstreamUnavailable]
) -> None:
    """Read what arrived and parse it; ``broken`` when the connection ended or is garbage."""
    try:
        data = await reader.read(_READ)
    except OSError as exc:
        raise broken(f"{exc.__class__.__name__}: {exc}") from exc
    if not data:
        raise broken("the container closed the connection before its answer ended")
    try:
        parser.feed_data(data)  # type: ignore[attr-defined]
    except httptools.HttpParserError as exc:
        raise broken(f"the container's answer is not valid HTTP: {exc}") from exc


@asynccontextmanager
async def stream_post(
    base_url: str, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float
) -> AsyncIterator[StreamedResponse]:
    """POST ``body`` and yield the answer once its head arrived (within ``timeout`` s).

    Reading the body is not bounded here: the caller's deadline covers the whole stream.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{base_url}: no connection within {timeout:.3g}s") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"{base_url}: {exc.__class__.__name__}: {exc}") from exc
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        try:
            async with asyncio.timeout(timeout):
                while not answer.head_done:
                    await _feed(reader, parser, broken=UpstreamUnavailable)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{base_url}: no answer within {timeout:.3g}s") from exc
        yield StreamedResponse(parser.get_status_code(), answer, reader, parser)
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
