"""``AsyncInference``: the submitter, the workers and the gauges of one ``tandem serve``.

Built before the app (its route is one of the app's), attached to the app once it exists (the
workers invoke through ``app.state.route`` and ``app.state.dispatcher``), started once the
endpoints serve and closed before they stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.asynchronous.metrics import BacklogCollector
from gateway.asynchronous.storage import Storage
from gateway.asynchronous.submit import Submitter
from gateway.asynchronous.worker import Workers
from gateway.edge.async_route import async_route
from gateway.live import EndpointTable
from gateway.settings import GatewaySettings
from gateway.state import StateStore


class AsyncInference:
    def __init__(
        self,
        store: StateStore,
        table: EndpointTable,
        settings: GatewaySettings,
        roots: Sequence[str | Path],
    ) -> None:
        self.store = store
        self.table = table
        self.settings = settings
        storage = Storage(settings.s3_endpoint_url)
        self.workers = Workers(
            store, table, storage, max_bytes=settings.async_max_bytes, region=settings.region
        )
        self.submit = Submitter(
            store, table, storage, roots, settings.async_max_bytes, self.workers.wake
        )

    def route(self) -> Route:
        return async_route(self.submit)

    def attach(self, app: Starlette) -> None:
        self.workers.attach(app.state.route, app.state.dispatcher, app.state.metrics)
        app.state.metrics.registry.register(BacklogCollector(self.store, self.table))

    async def start(self) -> None:
        await self.workers.start()

    def stop(self) -> None:
        """Stop the workers now (a signal): running requests run again at the next start."""
        self.workers.stop()

    async def aclose(self) -> None:
        await self.workers.aclose()
