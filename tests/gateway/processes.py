"""Helpers for the process-side tests: containers from specs, process trees, quick settings."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psutil

from gateway.lifecycle.health import ping
from gateway.live import ContainerRuntime, Instance, build
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec
from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON


def quick_settings(state_dir: Path, **overrides: Any) -> GatewaySettings:
    """Short timeouts so failure paths stay fast; generous enough for a loaded 2-core machine."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "start_timeout": 20.0,
        "stop_grace": 3.0,
        "restart_backoff": 0.2,
        "restart_backoff_max": 1.0,
        "health_interval": 0.2,
        "ping_timeout": 1.0,
    }
    return GatewaySettings.model_validate({**values, **overrides})


def shell(script: str) -> list[str]:
    """A command running ``script`` in sh; ``$SERVER`` starts the contract server in its place."""
    return ["sh", "-c", script.replace("$SERVER", f"{PYTHON} {CONTRACT_SERVER}")]


def endpoint(
    name: str = "ep", source: Path | None = None, **containers: dict[str, Any]
) -> Instance:
    """An endpoint whose containers are given as hostname -> container spec fields."""
    spec = EndpointSpec.model_validate(
        {
            "name": name,
            "execution": "Direct",
            "containers": [{"hostname": h, **fields} for h, fields in containers.items()],
            "source": source,
        }
    )
    (runtime,) = build([spec], Path.cwd())
    return runtime


def only(runtime: Instance) -> ContainerRuntime:
    (container,) = runtime.containers
    return container


async def wait_ping(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await ping(url, timeout=1.0):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer /ping within {timeout}s")
        await asyncio.sleep(0.05)


async def until(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    root = psutil.Process(pid)
    return [pid, *(p.pid for p in root.children(recursive=True))]


def value_from(lines: list[str], key: str) -> str | None:
    """The value of ``key=value`` in the first output line that has it."""
    for line in lines:
        for word in line.split():
            if word.startswith(key + "="):
                return word.split("=", 1)[1]
    return None
