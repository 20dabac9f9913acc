"""The httptools upstream's own edges, against real TCP servers that misbehave on purpose.

Each server is an ``asyncio`` server in the test's own loop, answering with exact bytes, so a
connection closed at the worst moment or an answer without a length is reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.upstream import UpstreamResponse, UpstreamUnavailable, create_upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


def exchange(handler: Handler, requests: int = 1) -> tuple[list[UpstreamResponse], int]:
    """Send ``requests`` POSTs one after the other; the answers and the connections opened."""
    connections = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await handler(reader, writer, connections)
        finally:
            writer.close()

    async def run() -> list[UpstreamResponse]:
        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        upstream = create_upstream("httptools", f"http://127.0.0.1:{port}")
        try:
            return [
                await upstream.post("/invocations", b"x%d" % i, {}, timeout=5.0, max_body=1024)
                for i in range(requests)
            ]
        finally:
            await upstream.aclose()
            server.close()
            await server.wait_closed()

    answers = asyncio.run(run())
    return answers, connections


def test_request_racing_a_keep_alive_close_is_sent_again() -> None:
    # The first connection answers once, then takes the next request and closes without a byte
    # back (a server dropping an idle connection as the request arrives); the second one answers.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            body = await read_request(reader)
            if n == 1 and body == b"x1":
                return
            writer.write(OK % (len(body), body))
            await writer.drain()

    answers, connections = exchange(handler, requests=2)
    assert [a.body for a in answers] == [b"x0", b"x1"]
    assert connections == 2


def test_new_connection_closed_without_answer_is_unavailable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)

    with pytest.raises(UpstreamUnavailable, match="before a whole answer"):
        exchange(handler)


def test_answer_delimited_by_close_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body * 3)

    answers, _ = exchange(handler)
    assert answers[0].body == b"x0x0x0"
    assert answers[0].status == 200


def test_chunked_answer_cut_short_is_unavailable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")

    with pytest.raises(UpstreamUnavailable):
        exchange(handler)


def test_interim_answer_is_skipped_and_headers_are_case_insensitive() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        body = await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK % (len(body), body))
        await writer.drain()
        await reader.read()

    answers, _ = exchange(handler)
    assert (answers[0].status, answers[0].body) == (200, b"x0")
    assert answers[0].headers["content-type"] == answers[0].headers.get("Content-Type")
    assert answers[0].headers.get("X-Missing") is None


def test_malformed_answer_is_unavailable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await reader.read()

    with pytest.raises(UpstreamUnavailable, match="malformed"):
        exchange(handler)


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="aiohttp upstream for https"):
        create_upstream("httptools", "https://example.com")
