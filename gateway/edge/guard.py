"""uvicorn's httptools protocol with the limits it lacks: header size, header and body deadlines.

httptools buffers headers without bound and uvicorn never times out a request being received, so
one client sending a 100 MB header, or a byte every few seconds (slowloris), would hold memory or a
connection for ever. Each connection is cheap under asyncio, so slow clients never block others;
these limits make sure they also cannot pile up. Over a limit the client gets a SageMaker-shaped
error (431 or 408) and the connection is closed.

Two costs of uvicorn's protocol that a client opening a connection per request pays on each
request are cut here too: it writes an answer's head and body in two syscalls (two segments the
client reads in two wake-ups), and it asks the socket for its own and its peer's address through
a fresh pseudo-socket each time (seven syscalls per connection). Heads now wait for their body and
leave in one write (or at the loop's next turn when no body follows at once), and the addresses
are read once. The deadlines are not timers either (two timer handles made and cancelled per
request): each connection keeps a deadline stamp, and one sweep per server looks at them a few
times a second.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def guarded_protocol(
    *, max_header_bytes: int, header_timeout: float, body_timeout: float
) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing these limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
        },
    )


def _error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"__type": code, "Message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"x-amzn-ErrorType: {code}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


MALFORMED = (
    "Malformed HTTP request: the request line or a header holds a byte HTTP does not allow "
    "(such as NUL or another control character), or the request is not HTTP/1.1."
)


class _HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = 64 * 1024
    header_timeout = 10.0
    body_timeout = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_body = False
        self._header_bytes = 0  # raw bytes of header blocks still incomplete after a read
        self._parsed_bytes = 0  # bytes of the request line and headers the parser handed over
        self._too_large = False
        self._headers_done = 0  # header blocks completed, to tell one feed's bytes apart
        #: When the phase being read (headers, then body) must be done; None: not reading.
        self._deadline: float | None = None
        self._expire: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's connection_made, minus its repeated address lookups (the gateway has no TLS).
        self.connections.add(self)
        self.transport = _OneWrite(transport, self.loop)  # type: ignore[assignment]
        self.flow = FlowControl(transport)
        self.scheme = "http"
        sock = transport.get_extra_info("socket")
        self.server, self.client = _addresses(sock) if sock is not None else (None, None)
        self._arm(self.header_timeout, self._headers_timed_out)
        state = self.server_state
        if not getattr(state, "tandem_sweeping", False):  # one sweep per server at a time
            state.tandem_sweeping = True  # type: ignore[attr-defined]
            interval = max(0.05, min(1.0, self.header_timeout / 5, self.body_timeout / 5))
            self.loop.call_later(interval, _sweep, self.loop, state, interval)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_headers = not self._in_body
        if reading_headers and self._deadline is None:
            self._arm(self.header_timeout, self._headers_timed_out)  # next request on keep-alive
        before = self._headers_done
        super().data_received(data)
        if reading_headers and self._headers_done == before and not self.transport.is_closing():
            # The parser took all of ``data`` as header bytes (it buffers partial lines itself).
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(self._too_large_response())

    def on_message_begin(self) -> None:
        self._parsed_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        # Raised inside a parser callback, httptools turns it into the HttpParserError that
        # uvicorn answers with ``send_400_response``, where the 431 is written instead.
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge

    def send_400_response(self, msg: str) -> None:
        # What httptools cannot parse (a NUL or other control byte in a header, a broken
        # request line) gets SageMaker's error shape too, not uvicorn's plain-text 400.
        if self._too_large:
            self._refuse(self._too_large_response())
        else:
            self._refuse(_error(400, "Bad Request", "ValidationError", MALFORMED))

    def _too_large_response(self) -> bytes:
        message = f"Request headers exceed the limit of {self.max_header_bytes} bytes."
        return _error(431, "Request Header Fields Too Large", "ValidationError", message)

    def on_headers_complete(self) -> None:
        self._headers_done += 1
        self._header_bytes = 0
        self._in_body = True
        self._arm(self.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def _arm(self, delay: float, callback: Any) -> None:
        self._deadline = self.loop.time() + delay
        self._expire = callback

    def _disarm(self) -> None:
        self._deadline = None

    def _headers_timed_out(self) -> None:
        message = f"Request headers not received within {self.header_timeout:g} seconds."
        self._refuse(_error(408, "Request Timeout", "ValidationError", message))

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()
            return
        message = f"Request body not received within {self.body_timeout:g} seconds."
        self._refuse(_error(408, "Request Timeout", "ValidationError", message))

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self.logger.warning("closing connection from %s: %s", self.client, response.split(b"\r")[0])
        self.transport.write(response)
        self.transport.close()


def _sweep(loop: asyncio.AbstractEventLoop, state: Any, interval: float) -> None:
    """Refuse the connections past their deadline; look again in ``interval`` while any is open."""
    now = loop.time()
    for conn in list(state.connections):
        deadline = getattr(conn, "_deadline", None)
        if deadline is not None and deadline <= now:
            conn._deadline = None
            conn._expire()
    if state.connections:
        loop.call_later(interval, _sweep, loop, state, interval)
    else:
        state.tandem_sweeping = False


def _addresses(sock: socket.socket) -> tuple[tuple[str, int | None] | None, tuple[str, int] | None]:
    """This end's and the peer's address, as uvicorn puts them in the ASGI scope."""
    try:
        here, there = sock.getsockname(), sock.getpeername()
    except OSError:  # the peer already left
        return None, None
    if isinstance(here, str):  # a Unix socket
        return (here, None), None
    return (str(here[0]), int(here[1])), (str(there[0]), int(there[1]))


class _OneWrite:
    """The connection's transport with an answer's head held until its body: one write.

    A held head leaves with the next write, or at ``close``, or at the loop's next turn (a
    streamed answer whose body comes later): nothing is reordered or kept back for long.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 100 "):
            self._held = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
