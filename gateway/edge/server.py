"""The server process's pieces: its listening socket and uvicorn (the state folder's lock is
``gateway.state.lock``).

Shared by ``tandem serve`` and by the gateway that ``tandem batch --spec`` starts for its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette

from gateway.edge.guard import guarded_protocol
from gateway.settings import GatewaySettings

#: A connection whose request has not come within this long is handed over anyway (and then
#: meets the header deadline of ``guard.py``).
DEFER_ACCEPT_SECONDS = 5


def bind(host: str, port: int) -> socket.socket:
    """The gateway's listening socket, bound before any container starts.

    With ``TCP_DEFER_ACCEPT`` (Linux) a new connection wakes the gateway once, when its request
    has arrived, instead of once for the handshake and again for the request: a client that opens
    a connection per request saves a wake-up each time.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    defer = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if defer is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, defer, DEFER_ACCEPT_SECONDS)
    return sock


class Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: the runner owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: Starlette, settings: GatewaySettings) -> Server:
    config = uvicorn.Config(
        app,
        http=guarded_protocol(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
        ),
        timeout_keep_alive=settings.keep_alive_timeout,
        loop="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(math.ceil(settings.stop_grace), 1),
    )
    return Server(config)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
