"""``AsyncInference``: the submitter, the workers and the gauges of one ``tandem serve``.

Built by the composition root (``gateway/serve.py``) from the data plane, before the app (its
route is one of the app's); the workers invoke through the plane's invocation core. Started once
the endpoints serve and closed before they stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.routing import Route

from gateway.asynchronous.metrics import BacklogCollector
from gateway.asynchronous.storage import Storage
from gateway.asynchronous.submit import Submitter
from gateway.asynchronous.worker import Workers
from gateway.edge.async_route import async_route
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
        self.workers = Workers(
            store,
            plane.invocations,
            storage,
            max_bytes=settings.async_max_bytes,
            region=settings.region,
        )
        plane.metrics.registry.register(BacklogCollector(store, table))
        self.submit = Submitter(
            store, table, storage, roots, settings.async_max_bytes, self.workers.wake
        )

    def route(self) -> Route:
        return async_route(self.submit)

    async def start(self) -> None:
        await self.workers.start()

    def stop(self) -> None:
        """Stop the workers now (a signal): running requests run again at the next start."""
        self.workers.stop()

    async def aclose(self) -> None:
        await self.workers.aclose()
