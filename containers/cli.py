"""``python -m containers serve --framework sklearn`` and the image's ``serve`` entry point."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from containers.errors import ContainerError
from containers.settings import FRAMEWORK_ENV, ContainerSettings, configure_logging

log = logging.getLogger("containers")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m containers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the container contract on SAGEMAKER_BIND_TO_PORT"
    )
    serve.add_argument(
        "--framework",
        help=f"sklearn, pytorch or tensorflow (default: ${FRAMEWORK_ENV}, which images set)",
    )
    return parser


def serve(framework: str | None = None) -> int:
    """Read settings once, then run uvicorn (uvloop + httptools) until SIGTERM.

    Multi-model with several workers: the router of :mod:`containers.router` in front of
    worker processes (each comes back here with the file descriptor of its private socket).
    """
    if framework:
        os.environ[FRAMEWORK_ENV] = framework  # worker processes read settings from the env
    try:
        settings = ContainerSettings()
    except ValidationError as exc:
        print(f"invalid container settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if settings.framework is None:
        print(f"no framework: pass --framework or set {FRAMEWORK_ENV}", file=sys.stderr)
        return 2

    import uvicorn

    from containers.app import create_app
    from containers.router import WORKER_FD_ENV, run_router

    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    worker_fd = os.environ.get(WORKER_FD_ENV)
    if worker_fd is not None:  # one worker of a multi-process multi-model container
        return _serve_worker(settings, int(worker_fd), options)
    if settings.multi_model and settings.workers > 1:
        return run_router(settings)
    if settings.workers > 1:
        uvicorn.run(
            "containers.app:app_factory",
            factory=True,
            workers=settings.workers,
            **options,
        )
        return 0
    try:
        app = create_app(settings)
    except ContainerError as exc:
        print(f"cannot start: {exc.message}", file=sys.stderr)
        return 2
    uvicorn.run(app, **options)
    return 0


def _serve_worker(settings: ContainerSettings, fd: int, options: dict[str, Any]) -> int:
    """Serve on the router's socket, inherited as ``fd``.

    Not uvicorn's ``fd`` option: it takes the socket for a Unix one, so uvloop would leave Nagle
    on for its connections, and the head and body of each answer would wait for the router's
    delayed ACK (40 ms).
    """
    import uvicorn

    from containers.app import create_app

    try:
        app = create_app(settings)
    except ContainerError as exc:
        print(f"cannot start: {exc.message}", file=sys.stderr)
        return 2
    del options["host"], options["port"]
    # The router holds its connections open: no idle timeout to race its next request.
    config = uvicorn.Config(app, **options, timeout_keep_alive=24 * 3600)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve(args.framework)


def serve_entry() -> None:
    """The ``serve`` console script; ``docker run <image> serve`` passes ``serve`` as argument."""
    argv = sys.argv[1:]
    if argv and argv[0] == "serve":
        argv = argv[1:]
    sys.exit(main(["serve", *argv]))
