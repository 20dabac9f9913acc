"""``AsyncInference``: the submitter, the workers and the gauges of one ``tandem serve``.

Built by the composition root (``gateway/serve.py``) from the data plane, before the app (its
route is one of the app's); the workers invoke through the plane's invocation core. Started once
the endpoints serve and closed before they stop.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from starlette.routing import Route

from gateway.asynchronous.commits import GroupCommit
from gateway.asynchronous.inputs import InputPolicy, parse_roots
from gateway.asynchronous.metrics import BacklogCollector
from gateway.asynchronous.storage import Storage
from gateway.asynchronous.submit import Submitter
from gateway.asynchronous.worker import Workers
from gateway.edge.async_route import AsyncInvocationsApp, async_route
from gateway.edge.auth import caller_role
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import StateStore


class AsyncInference:
    def __init__(
        self,
        store: StateStore,
        plane: DataPlane,
        settings: GatewaySettings,
        roots: Sequence[str | Path],
    ) -> None:
        self.store = store
        self.table = table = plane.table
        self.settings = settings
        storage = Storage(settings.s3_endpoint_url)
        #: The queue's writes, a transaction per group: the submitter's and the workers'.
        self.commits = GroupCommit(store, storage)
        self.workers = Workers(
            store,
            plane.invocations,
            storage,
            max_bytes=settings.async_max_bytes,
            region=settings.region,
            commits=self.commits,
        )
        policy = InputPolicy(
            admin_roots=tuple(str(r) for r in roots),
            client_roots=parse_roots(settings.input_roots),
            state_dir=settings.state_dir.resolve(),
        )
        plane.metrics.registry.register(BacklogCollector(store, table))
        self.submit = Submitter(
            self.commits,
            table,
            storage,
            policy,
            settings.async_max_bytes,
            self.workers.wake,
            account=settings.account,
            runner=self.workers,
        )

    @functools.cached_property
    def app(self) -> AsyncInvocationsApp:
        """InvokeEndpointAsync's ASGI app (``create_app(..., asynchronous=...)``)."""
        settings = self.settings
        return AsyncInvocationsApp(self.submit, role=lambda scope: caller_role(scope, settings))

    def route(self) -> Route:
        """The route, for requests the edge's shortcut does not hand ``app`` itself."""
        return async_route(self.app)

    async def start(self) -> None:
        await self.workers.start()

    def stop(self) -> None:
        """Stop the workers now (a signal): running requests run again at the next start."""
        self.workers.stop()

    async def aclose(self) -> None:
        await self.workers.aclose()
