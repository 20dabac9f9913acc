"""StreamConnections against a real HTTP server on a socket: reuse, retry, and when it closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.upstream import UpstreamUnavailable
from gateway.upstream.streaming import StreamConnections

PARTS = (b"one", b"two", b"three")


class Server:
    """Answers every POST in PARTS as chunks; counts connections, notices when one is closed.

    ``drop_second`` closes a connection when a second request comes on it, unread and
    unanswered (as a server that timed the idle connection out just as the request came);
    ``say_close`` answers ``Connection: close`` and closes.
    """

    def __init__(self, *, drop_second: bool = False, say_close: bool = False) -> None:
        self.drop_second = drop_second
        self.say_close = say_close
        self.accepted = 0
        self.requests = 0
        self.ended = asyncio.Event()  # a client closed its connection
        self.release = asyncio.Event()  # set: send the parts after the first one
        self.release.set()
        self.handlers: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if self.drop_second and served == 1:
                    return
                served += 1
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                self.requests += 1
                extra = b"Connection: close\r\n" if self.say_close else b""
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + extra + b"\r\n")
                for index, part in enumerate(PARTS):
                    if index == 1:
                        await self.release.wait()
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                if self.say_close:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.ended.set()
        finally:
            writer.close()


async def serve(
    server: Server, use: Callable[[str, StreamConnections], Awaitable[None]], **options: float
) -> None:
    """``use(url, pool)`` with the server listening; the pool is closed after."""
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    pool = StreamConnections(**options)  # type: ignore[arg-type]
    try:
        await use(f"http://127.0.0.1:{port}", pool)
    finally:
        pool.aclose()
        listening.close()
        await listening.wait_closed()
        # Every connection closed, so every handler ends: wait for them (a deadline, no sleep).
        await asyncio.wait_for(asyncio.gather(*server.handlers, return_exceptions=True), 5)


async def parts(pool: StreamConnections, url: str) -> list[bytes]:
    async with pool.post(url, "/invocations", b"x", {}, timeout=5) as answer:
        assert answer.status == 200
        return [chunk async for chunk in answer.chunks()]


async def each(answers: AsyncIterator[bytes]) -> bytes:
    return await answers.__anext__()


def test_a_clean_answer_leaves_its_connection_for_the_next_stream() -> None:
    server = Server()

    async def use(url: str, pool: StreamConnections) -> None:
        for _ in range(3):
            assert await parts(pool, url) == list(PARTS)
        pool.aclose()
        await asyncio.wait_for(server.ended.wait(), 5)  # closing the pool closes the idle one

    asyncio.run(serve(server, use))
    assert (server.accepted, server.requests) == (1, 3)


def test_a_request_the_server_dropped_unread_is_sent_again_on_a_new_connection() -> None:
    server = Server(drop_second=True)

    async def use(url: str, pool: StreamConnections) -> None:
        for _ in range(3):
            assert await parts(pool, url) == list(PARTS)
        pool.aclose()

    asyncio.run(serve(server, use))
    # Each request ran once: the second and third were each dropped once on a reused connection.
    assert (server.accepted, server.requests) == (3, 3)


def test_connection_close_is_honoured() -> None:
    server = Server(say_close=True)

    async def use(url: str, pool: StreamConnections) -> None:
        for _ in range(2):
            assert await parts(pool, url) == list(PARTS)
        assert not pool._idle.get(url)

    asyncio.run(serve(server, use))
    assert (server.accepted, server.requests) == (2, 2)


def test_a_stream_left_midway_closes_its_connection_so_the_container_stops() -> None:
    server = Server()
    server.release.clear()

    async def use(url: str, pool: StreamConnections) -> None:
        with pytest.raises(LookupError):
            async with pool.post(url, "/invocations", b"x", {}, timeout=5) as answer:
                assert await each(answer.chunks()) == PARTS[0]
                raise LookupError("the client left")
        server.release.set()
        await asyncio.wait_for(server.ended.wait(), 5)
        assert await parts(pool, url) == list(PARTS)  # a new connection, not the broken one

    asyncio.run(serve(server, use))
    assert server.accepted == 2


def test_an_idle_connection_past_its_age_is_not_reused() -> None:
    server = Server()

    async def use(url: str, pool: StreamConnections) -> None:
        for _ in range(2):
            assert await parts(pool, url) == list(PARTS)

    asyncio.run(serve(server, use, idle_seconds=0))
    assert server.accepted == 2


def test_dropping_a_url_closes_its_idle_connections() -> None:
    server = Server()

    async def use(url: str, pool: StreamConnections) -> None:
        assert await parts(pool, url) == list(PARTS)
        pool.drop(url + "/")
        await asyncio.wait_for(server.ended.wait(), 5)

    asyncio.run(serve(server, use))


def test_a_server_that_is_gone_is_unavailable() -> None:
    async def use(url: str, pool: StreamConnections) -> None:
        with pytest.raises(UpstreamUnavailable):
            async with pool.post(url, "/invocations", b"x", {}, timeout=5):
                pass

    async def closed() -> None:
        listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        listening.close()
        await listening.wait_closed()
        await use(f"http://127.0.0.1:{port}", StreamConnections())

    asyncio.run(closed())
