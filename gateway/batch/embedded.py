"""The one way a batch job starts its own gateway: the spec's containers, healthy, behind the
runtime API on a loopback port, for as long as the job runs.

``tandem batch --spec`` (``endpoint.py``) and CreateTransformJob (``jobs.py``) both use it; the
job is then an ordinary client of that runtime API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway import live
from gateway.batch.errors import EndpointStartError
from gateway.edge.app import create_app
from gateway.edge.server import bind, make_server
from gateway.lifecycle.backends.base import Backend
from gateway.lifecycle.budget import ContainerBudget
from gateway.lifecycle.supervisor import Supervisor
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec


@contextlib.asynccontextmanager
async def embedded_gateway(
    spec: EndpointSpec,
    settings: GatewaySettings,
    backend: Backend,
    *,
    reap: bool,
    budget: ContainerBudget | None = None,
) -> AsyncIterator[str]:
    """Start ``spec``'s containers (``reap``: clear leftovers of an earlier run first and after)
    and serve the runtime API over them on ``settings.host``; its base URL. Stops both after.
    ``budget``: the host budget the containers count in while they run (a transform job's)."""
    endpoints = live.build([spec], settings.state_dir)
    if budget is not None:
        await budget.reserve(endpoints, f'transform job "{spec.name}"')
    try:
        async with _serving(spec, endpoints, settings, backend, reap=reap) as url:
            yield url
    finally:
        if budget is not None:
            budget.release(endpoints)


@contextlib.asynccontextmanager
async def _serving(
    spec: EndpointSpec,
    endpoints: list[live.Instance],
    settings: GatewaySettings,
    backend: Backend,
    *,
    reap: bool,
) -> AsyncIterator[str]:
    supervisor = Supervisor(endpoints, backend, settings)
    await supervisor.start(reap=reap)  # on failure it stops what it started
    try:
        with bind(settings.host, 0) as sock:
            server = make_server(create_app(endpoints, settings), settings)
            task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{spec.name} api")
            try:
                while not server.started:
                    if task.done():
                        task.result()
                        raise EndpointStartError(
                            f"the runtime API for {spec.name} stopped while starting"
                        )
                    await asyncio.sleep(0.01)
                host, port = sock.getsockname()[:2]
                yield f"http://{host}:{port}"
            finally:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await task
    finally:
        await supervisor.stop(reap=reap)
