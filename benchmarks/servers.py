"""The server processes a benchmark starts: the real scikit-learn container, a gateway over
given containers, and the waiting, logging and stopping around each.

Split from ``benchmarks/gateway.py`` so that every benchmark starts, waits for and stops its
servers the same way, with a benchmark's own models and figures kept in its own file;
``benchmarks.gateway`` re-exports these names for the benchmarks that import them from there.
Run as ``python -m benchmarks.servers _gateway PORT UPSTREAM ENDPOINTS`` (from the repository
root), it is the gateway child that ``gateway`` starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Poll ``url`` until it answers 200; SystemExit if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode} before {url} was ready")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready within {timeout}s")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    """A server child whose output goes to a log file, shown only if it fails to start."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            args,
            env={**os.environ, **env},
            cwd=ROOT,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_ready(ready_url, proc)
            except SystemExit:
                log.seek(0)
                sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
                raise
            yield
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, and SIGKILL to its whole session if it has not exited within ``timeout`` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def container(model_dir: Path, method: str = "predict", accept: str = "") -> Iterator[str]:
    """The scikit-learn container on ``model_dir`` (``method``: what it calls, ``accept``: its
    default answer type), one worker; its URL while it runs."""
    port = free_port()
    env = {
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "TANDEM_SKLEARN_METHOD": method,
    }
    if accept:
        env["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] = accept
    args = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
    with process(args, env, f"http://127.0.0.1:{port}/ping"):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def gateway(upstream: str, endpoints: dict[str, list[str]]) -> Iterator[str]:
    """A gateway child (``serve_gateway``) over running containers, ``endpoints`` naming each
    endpoint's container URLs in chain order, through the ``upstream`` client; its URL."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "benchmarks.servers",
        "_gateway",
        str(port),
        upstream,
        json.dumps(endpoints),
    ]
    with process(args, {}, f"http://127.0.0.1:{port}/ping"):
        yield f"http://127.0.0.1:{port}"


def serve_gateway(port: int, upstream: str, endpoints: dict[str, list[str]]) -> None:
    """Child process: the gateway app served as ``tandem serve`` serves it."""
    import asyncio

    from gateway.edge.app import create_app
    from gateway.edge.server import bind, loop_factory, make_server
    from gateway.live import ContainerState, Instance
    from gateway.settings import GatewaySettings
    from pipelines.spec import EndpointSpec

    runtimes = []
    for name, urls in endpoints.items():
        containers = [{"command": ["bench"]} for _ in urls]
        runtime = Instance.from_spec(EndpointSpec(name=name, containers=containers))  # type: ignore[arg-type]
        for c, url in zip(runtime.containers, urls, strict=True):
            c.url, c.state = url, ContainerState.HEALTHY
        runtimes.append(runtime)
    settings = GatewaySettings(upstream=upstream, port=port, log_level="warning")  # type: ignore[arg-type]
    server = make_server(create_app(runtimes, settings), settings)
    with bind(settings.host, port) as sock, asyncio.Runner(loop_factory=loop_factory()) as run:
        run.run(server.serve(sockets=[sock]))


def post(url: str, body: bytes, content_type: str) -> bytes:
    """One POST's answer body: how a benchmark checks what a server answers before timing it."""
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        data: bytes = answer.read()
        return data


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_gateway":
        serve_gateway(int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))
    else:
        raise SystemExit("usage: python -m benchmarks.servers _gateway PORT UPSTREAM ENDPOINTS")
