"""Real servers for the gateway HTTP tests: contract containers as processes, the app in uvicorn."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import uvicorn
from botocore.config import Config

from gateway.live import ContainerState, Instance, build
from pipelines.spec import EndpointSpec
from tests.support import PYTHON, ROOT, free_port, running, wait_until

#: The tests' one toy container (``contract_server.py`` says how to configure it).
CONTRACT_SERVER = str(ROOT / "tests" / "gateway" / "contract_server.py")


@contextmanager
def contract_process(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``contract_server.py`` configured by ``CONTRACT_*`` env; yield its URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {"SAGEMAKER_BIND_TO_PORT": str(port), **env}
    with running([PYTHON, CONTRACT_SERVER], env=full_env, url=url, timeout=30) as proc:
        yield url, proc


@contextmanager
def contract_server(**env: str) -> Iterator[str]:
    """Like ``contract_process``, yielding only the base URL."""
    with contract_process(**env) as (url, _proc):
        yield url


@contextmanager
def contract_servers(configs: Mapping[str, Mapping[str, str]]) -> Iterator[dict[str, str]]:
    """Several contract servers at once, by name; yields name -> base URL."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(contract_server(**env)) for name, env in configs.items()}


def endpoint(urls: Mapping[str, str], **spec: Any) -> Instance:
    """An ``Instance`` built by hand: every container healthy at its URL.

    Each container's ``command`` names the server it points to (key of ``urls``).
    """
    (runtime,) = build([EndpointSpec.model_validate(spec)], Path(".tandem"))
    for container in runtime.containers:
        assert container.spec.command is not None
        container.url = urls[container.spec.command[0]]
        container.state = ContainerState.HEALTHY
    return runtime


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread (real HTTP on a free port); yield its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def sagemaker_client(url: str) -> Any:
    """The real boto3 runtime client, pointed at the gateway, retries off."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5),
    )
