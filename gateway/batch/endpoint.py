"""Finding the endpoint a job talks to: a running gateway, or one started from a spec for the job.

The container's ``/execution-parameters`` are not on the runtime API, so they are found through the
gateway's ``GET /endpoints/{name}``, which lists each container's URL; the job asks the containers
that receive its requests (the target in Direct mode, every step of a Serial chain) directly. When
that fails (another kind of server, containers not reachable from here), the defaults apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gateway.batch.client import EndpointClient
from gateway.batch.config import MAX_PAYLOAD_MB, MB, BatchConfig
from gateway.batch.errors import ConfigError, EndpointStartError

log = logging.getLogger("tandem.batch")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    name: str


@contextlib.asynccontextmanager
async def endpoint_for(config: BatchConfig) -> AsyncIterator[Target]:
    """The endpoint of ``config``; with a spec, start it (embedded processes) and stop it after."""
    if config.spec is None:
        assert config.endpoint_url is not None and config.endpoint is not None  # checked by config
        yield Target(config.endpoint_url, config.endpoint)
        return
    async with _serve_spec(config.spec, config) as target:
        yield target


@contextlib.asynccontextmanager
async def _serve_spec(path: Path, config: BatchConfig) -> AsyncIterator[Target]:
    # The server side is imported only here: --endpoint-url jobs never load uvicorn or the app.
    from gateway.batch.embedded import embedded_gateway
    from gateway.lifecycle.backends import BackendError, create_backend
    from gateway.lifecycle.supervisor import StartError
    from gateway.settings import GatewaySettings
    from gateway.state.lock import StateDirBusy, state_lock
    from pipelines.spec import SpecError, load_specs

    try:
        (spec,) = load_specs([path])
    except SpecError as exc:
        raise EndpointStartError(str(exc)) from exc
    if config.endpoint is not None and config.endpoint != spec.name:
        raise ConfigError(f"endpoint {config.endpoint!r} is not {path}'s name {spec.name!r}")
    base = GatewaySettings()
    # Its own state folder (and lock), so a `tandem serve` in the same folder is not disturbed.
    # The embedded gateway accepts the largest payload any job may send: the job keeps to its own
    # limit, which may come from the container's /execution-parameters, known only once started.
    payload = max(base.max_payload, MAX_PAYLOAD_MB * MB)
    settings = base.model_copy(
        update={
            "host": "127.0.0.1",
            "port": 0,
            "state_dir": base.state_dir / "batch",
            "max_payload": payload,
        }
    )
    if spec.variants or spec.shadow_variants:
        raise ConfigError(
            f"{path}: a batch job runs one model; {spec.name!r} has variants (give a spec "
            "with top-level containers)"
        )
    async with contextlib.AsyncExitStack() as stack:
        try:
            stack.enter_context(state_lock(settings.state_dir))
            backend = create_backend(settings.backend, settings)
            log.info("starting endpoint %s from %s", spec.name, path)
            started = embedded_gateway(spec, settings, backend, reap=True)
            url = await stack.enter_async_context(started)
        except (StartError, BackendError, StateDirBusy, OSError) as exc:
            raise EndpointStartError(f"cannot start {spec.name} from {path}: {exc}") from exc
        log.info("endpoint %s is serving on %s", spec.name, url)
        yield Target(url, spec.name)


async def execution_parameters(client: EndpointClient, target_container: str | None) -> Any:
    """Merge the ``/execution-parameters`` of the containers a request reaches; ``None`` if none.

    Each container must cope with what is sent, so concurrency and payload take the smallest wish;
    the batch strategy is the first receiving container's.
    """
    described = await client.get_json(f"{client.base}/endpoints/{client.endpoint}")
    if not described:
        return None
    containers = described.get("Containers") or []
    if target_container is not None:
        containers = [c for c in containers if c.get("ContainerHostname") == target_container]
    urls = [str(c["Url"]).rstrip("/") for c in containers if isinstance(c, dict) and c.get("Url")]
    if not _is_loopback(client.base):
        # Loopback URLs of a remote gateway's containers would reach this machine instead.
        urls = [u for u in urls if not _is_loopback(u)]
    answers = [
        a
        for a in await asyncio.gather(*(client.get_json(f"{u}/execution-parameters") for u in urls))
        if a
    ]
    if not answers:
        return None
    merged: dict[str, Any] = {}
    if "BatchStrategy" in answers[0]:
        merged["BatchStrategy"] = answers[0]["BatchStrategy"]
    for key in ("MaxConcurrentTransforms", "MaxPayloadInMB"):
        values = [a[key] for a in answers if isinstance(a.get(key), int | float) and a[key] > 0]
        if values:
            merged[key] = min(values)
    log.debug("execution parameters from %d container(s): %s", len(answers), merged)
    return merged


def _is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host == "::1"
