"""``tandem serve``'s orchestration: specs -> containers -> healthy -> HTTP -> orderly shutdown.

Order matters both ways: the listening socket is bound before anything starts (a busy port fails
fast, with nothing started), the HTTP app is created only once every container is healthy (its
lifespan pools a client per container URL), and on SIGINT/SIGTERM the server drains before the
containers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from gateway import runtime
from gateway.edge.app import create_app
from gateway.edge.guard import guarded_protocol
from gateway.lifecycle.backends import create_backend
from gateway.lifecycle.supervisor import Supervisor
from gateway.runtime import EndpointRuntime
from gateway.settings import GatewaySettings
from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec, load_specs

logger = logging.getLogger("tandem.gateway")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class StateDirBusy(TandemError):
    """Another ``tandem serve`` uses the same state folder (it holds the folder's lock)."""


def run(spec_paths: Sequence[str | Path], settings: GatewaySettings) -> int:
    """Serve until SIGINT/SIGTERM; raises ``SpecError``, ``StartError``, ``StateDirBusy``, ..."""
    specs = load_specs(spec_paths)  # nothing starts unless every spec is valid
    configure_logging(settings.log_level)
    with state_lock(settings.state_dir), asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(specs, settings))
    return 0


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


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


async def serve(specs: list[EndpointSpec], settings: GatewaySettings) -> None:
    sock = bind(settings.host, settings.port)
    endpoints = runtime.build(specs, settings.state_dir)
    backend = create_backend(settings.backend, settings)
    supervisor = Supervisor(endpoints, backend, settings)
    stop = asyncio.Event()
    server: _Server | None = None

    def on_signal(sig: int) -> None:
        logger.info("received %s, shutting down", signal.Signals(sig).name)
        if stop.is_set() and server is not None:
            server.force_exit = True  # a second Ctrl-C skips draining connections
        stop.set()
        supervisor.stop_restarting()
        if server is not None:
            server.should_exit = True

    with _signal_handlers(on_signal), sock:
        try:
            if not await _until_stopped(supervisor.start(), stop):
                return
            server = make_server(endpoints, settings)
            if stop.is_set():
                return
            names = ", ".join(e.name for e in endpoints)
            host, port = sock.getsockname()[:2]
            logger.info("serving %s on http://%s:%d", names, host, port)
            await server.serve(sockets=[sock])
        finally:
            await supervisor.stop()
            logger.info("stopped")


def bind(host: str, port: int) -> socket.socket:
    """The gateway's listening socket, bound before any container starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc


async def _until_stopped(start: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``start`` unless ``stop`` is set first; True when it completed."""
    task = asyncio.ensure_future(start)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()  # re-raises a start failure
        return True
    task.cancel()  # the supervisor stops what it started
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: the runner owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(endpoints: list[EndpointRuntime], settings: GatewaySettings) -> _Server:
    config = uvicorn.Config(
        create_app(endpoints, settings),
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
    return _Server(config)


@contextlib.contextmanager
def _signal_handlers(handler: Callable[[int], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
