"""The container's model API as the manager speaks it: ``POST /models`` to load a model and
``DELETE /models/{name}`` to unload one (docs/contract.md).

Kept apart from ``manager.py`` so that the manager reads as policy (when to load, what to evict,
how much room) and this as the wire: the request bodies, the limits on the answers, the stale
copy a load may meet, and what a container out of reach becomes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import quote

from gateway.live import ContainerRuntime
from gateway.multimodel.cache import CacheEntry
from gateway.multimodel.errors import unreachable
from gateway.multimodel.targets import container_name
from gateway.upstream import Upstream, UpstreamError

log = logging.getLogger("tandem.models")

#: Largest answer read from the container's model API (its messages, not payloads).
ADMIN_BODY = 1024 * 1024
#: Seconds an unload (``DELETE /models/{name}``) may take.
UNLOAD_TIMEOUT = 60.0


class ModelApi:
    """Loads and unloads on one container, over a client from ``upstream`` (made anew per call:
    the container's client changes when it restarts)."""

    def __init__(
        self,
        container: ContainerRuntime,
        upstream: Callable[[], Upstream],
        *,
        load_timeout: float,
    ) -> None:
        self.container = container
        self._upstream = upstream
        self._load_timeout = load_timeout

    async def load(self, target: str, cached: CacheEntry) -> tuple[int, str]:
        """``POST /models`` of ``target``'s files under its container name; a 409 (a stale copy
        under this name) is unloaded and retried. The container's status and message; raises
        the ``unreachable`` ApiError."""
        name = container_name(target)
        body = json.dumps({"model_name": name, "url": str(cached.path)}).encode()
        headers = {"Content-Type": "application/json"}
        for _ in range(2):
            try:
                response = await self._upstream().post(
                    "/models", body, headers, timeout=self._load_timeout, max_body=ADMIN_BODY
                )
            except UpstreamError as exc:
                raise unreachable(self.container.hostname, exc) from exc
            if response.status != 409:
                break
            await self.unload(name)
        return response.status, response.body.decode("utf-8", "replace")

    async def unload(self, name: str) -> None:
        """``DELETE /models/{name}``; a container out of reach is only logged."""
        try:
            await self._upstream().delete(
                f"/models/{quote(name, safe='')}", timeout=UNLOAD_TIMEOUT, max_body=ADMIN_BODY
            )
        except UpstreamError as exc:  # it is restarting: its models are gone anyway
            where = f"{self.container.endpoint}/{self.container.hostname}"
            log.warning("%s: cannot unload %s: %s", where, name, exc)
