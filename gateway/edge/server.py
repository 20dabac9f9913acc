"""The server process's pieces: its listening socket, its state folder's lock, uvicorn.

Shared by ``tandem serve`` and by the gateway that ``tandem batch --spec`` starts for its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from gateway.edge.guard import guarded_protocol
from gateway.settings import GatewaySettings
from pipelines.errors import TandemError

#: A connection whose request has not come within this long is handed over anyway (and then
#: meets the header deadline of ``guard.py``).
DEFER_ACCEPT_SECONDS = 5


class StateDirBusy(TandemError):
    """Another ``tandem serve`` uses the same state folder (it holds the folder's lock)."""


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir/.lock`` for the gateway's life; the kernel drops it if the gateway dies."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateDirBusy(
                f"state folder {state_dir} is in use by another tandem serve (pid {holder}); "
                "stop it or pass another --state-dir"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


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
