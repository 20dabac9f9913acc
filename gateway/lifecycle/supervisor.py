"""The supervisor: start every container, wait for every /ping, keep them alive, stop them.

It is backend-agnostic and owns the containers' life cycle state (``ContainerRuntime.state``), which
the HTTP side reads: a container that is not HEALTHY is answered with ServiceUnavailable at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.artifacts import ArtifactError, prepare_model_dir
from gateway.folders import container_dir
from gateway.lifecycle.backends.base import (
    CODE_FOLDER,
    SUBMIT_ENV,
    Backend,
    BackendError,
    ContainerHandle,
    submitted_code,
)
from gateway.lifecycle.containerlog import ContainerLog
from gateway.lifecycle.health import ping
from gateway.live import ContainerRuntime, ContainerState, Instance
from gateway.settings import GatewaySettings
from pipelines.errors import TandemError
from pipelines.spec import Mode

logger = logging.getLogger("tandem.supervisor")

#: Seconds between two ``/ping``s of a starting container, at first and at most: a refused
#: connection costs well under a millisecond, and every poll skipped is time the new instance
#: is ready but not yet serving (a scale-out, a request held at zero instances).
PING_FIRST, PING_EVERY = 0.01, 0.05


class StartError(TandemError):
    """The endpoints could not start; one line per problem, with the container's log tail."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("cannot start:\n" + "\n".join(problems))


def raise_start_errors(results: Sequence[object]) -> None:
    """Of ``gather(..., return_exceptions=True)`` over starts: one ``StartError`` with every
    problem; anything else that was raised (a bug, a cancellation) as it was."""
    problems: list[str] = []
    for result in results:
        if isinstance(result, StartError):
            problems.extend(result.problems)
        elif isinstance(result, BaseException):
            raise result
    if problems:
        raise StartError(problems)


class _NotHealthy(Exception):
    """A container did not become healthy; the message says how (timeout, exit code)."""


@dataclass(eq=False)
class _Slot:
    """Everything the supervisor keeps for one container."""

    container: ContainerRuntime
    base_dir: Path
    log: ContainerLog
    #: ``model_data`` as an absolute path or URL; None for no model or a MultiModel prefix.
    source: str | None
    #: ``SAGEMAKER_SUBMIT_DIRECTORY``: the user's code, fetched apart from the model; None if unset.
    code: str | None = None
    handle: ContainerHandle | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.container.endpoint}/{self.container.hostname}"

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"


def restart_delay(attempt: int, first: float, cap: float) -> float:
    """Seconds to wait before restart ``attempt`` (0-based) of a crash loop: doubling, capped."""
    # Bounded exponent: 2**1024 overflows a float, and a day-long crash loop gets that far.
    return min(first * 2.0 ** min(attempt, 64), cap)


def backoff_attempt(attempt: int, healthy_for: float, reset_after: float) -> int:
    """The attempt a new crash loop goes on from: 0 once the container stayed healthy a while."""
    return 0 if healthy_for >= reset_after else attempt


class Supervisor:
    def __init__(
        self, endpoints: list[Instance], backend: Backend, settings: GatewaySettings
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._slots = [
            _Slot(
                container=c,
                base_dir=container_dir(settings.state_dir, c).resolve(),
                log=ContainerLog(
                    f"{c.endpoint}/{c.hostname}",
                    container_dir(settings.state_dir, c) / "container.log",
                    tail=settings.log_tail_lines,
                    labels={
                        "endpoint": e.name,
                        "variant": e.variant,
                        "hostname": c.hostname,
                        **({"component": e.component} if e.component else {}),
                    },
                ),
                # A MultiModel prefix is not unpacked here: the model store loads models on demand.
                source=None if c.spec.mode is Mode.MULTI_MODEL else e.spec.model_data_url(c.spec),
                code=submitted_code(c),
            )
            for e in endpoints
            for c in e.containers
        ]

    @property
    def handles(self) -> dict[str, ContainerHandle | None]:
        """``endpoint/hostname`` -> the running instance (for tests and diagnostics)."""
        return {s.name: s.handle for s in self._slots}

    async def start(self, *, reap: bool = True) -> None:
        """Start everything and wait until every container is healthy; on any failure stop all.

        ``reap`` first kills what an earlier gateway on this state folder left running: only the
        first supervisor of a gateway may do that (a later one would kill its siblings).
        """
        problems = []
        for slot in self._slots:
            try:
                self._backend.check(slot.container)
            except BackendError as exc:
                problems.append(str(exc))
        if problems:
            raise StartError(problems)
        if reap:
            await self._backend.reap_leftovers()
        try:
            await self._prepare_all()
            results = await asyncio.gather(
                *(self._start_first(s) for s in self._slots), return_exceptions=True
            )
            raise_start_errors(results)
            for slot in self._slots:
                slot.watcher = asyncio.create_task(self._watch(slot), name=f"watch {slot.name}")
        except BaseException:
            await self.stop(reap=reap)
            raise

    def stop_restarting(self) -> None:
        """Shutdown has begun: a container that ends now is not restarted (it may be stopping)."""
        for slot in self._slots:
            if slot.watcher is not None:
                slot.watcher.cancel()

    async def stop(self, *, reap: bool = True) -> None:
        """Stop watching, then stop every container (SIGTERM, SIGKILL after the grace period).

        ``reap`` then kills anything left on this state folder: only at the gateway's shutdown.
        """
        watchers = [s.watcher for s in self._slots if s.watcher is not None]
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await asyncio.gather(*(self._stop(s) for s in self._slots), return_exceptions=True)
        for slot in self._slots:
            slot.watcher = None
            slot.container.state = ContainerState.STOPPED
            slot.log.close()
        if reap:
            await self._backend.reap_leftovers()

    async def _prepare_all(self) -> None:
        problems = []
        for slot in self._slots:
            try:
                await asyncio.to_thread(
                    prepare_model_dir,
                    slot.source,
                    slot.model_dir,
                    max_bytes=self._settings.max_model_bytes,
                    s3_endpoint_url=self._settings.s3_endpoint_url,
                )
            except ArtifactError as exc:
                problems.append(f"{slot.name}: model_data: {exc}")
            except OSError as exc:
                problems.append(f"{slot.name}: cannot prepare {slot.model_dir}: {exc}")
            else:
                problems.extend(await self._prepare_code(slot))
        if problems:
            raise StartError(problems)

    async def _prepare_code(self, slot: _Slot) -> list[str]:
        """The user's code, from ``SAGEMAKER_SUBMIT_DIRECTORY`` (a folder or ``.tar.gz``, local
        or on S3) into the container's code folder, the way model data comes; what went wrong."""
        if slot.code is None:
            return []
        target = slot.base_dir / CODE_FOLDER
        try:
            await asyncio.to_thread(
                prepare_model_dir,
                slot.code,
                target,
                max_bytes=self._settings.max_model_bytes,
                s3_endpoint_url=self._settings.s3_endpoint_url,
            )
        except ArtifactError as exc:
            return [f"{slot.name}: {SUBMIT_ENV}: {exc}"]
        except OSError as exc:
            return [f"{slot.name}: {SUBMIT_ENV}: cannot prepare {target}: {exc}"]
        return []

    async def _start_first(self, slot: _Slot) -> None:
        slot.log.open(truncate=True)
        try:
            await self._launch(slot)
        except (_NotHealthy, BackendError) as exc:
            slot.container.state = ContainerState.FAILED
            raise StartError([f"{slot.name}: {exc}\n{slot.log.tail_text()}"]) from exc
        slot.container.state = ContainerState.HEALTHY
        slot.container.generation += 1
        logger.info("%s is healthy at %s", slot.name, slot.container.url)

    async def _launch(self, slot: _Slot) -> None:
        """One start of one container, up to its first successful ``/ping``."""
        handle = await self._backend.start(
            slot.container, model_dir=slot.model_dir, base_dir=slot.base_dir, on_line=slot.log
        )
        slot.handle = handle
        slot.container.handle = handle
        slot.container.url = handle.url
        try:
            await self._wait_healthy(handle, self._settings.start_timeout)
        except _NotHealthy:
            await handle.stop(self._settings.stop_grace)
            raise

    async def _wait_healthy(self, handle: ContainerHandle, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = PING_FIRST
        while True:
            if not handle.alive:
                code = await handle.wait()
                raise _NotHealthy(f"exited with code {code} before answering /ping")
            if await ping(handle.url, timeout=self._settings.ping_timeout):
                return
            if time.monotonic() >= deadline:
                raise _NotHealthy(f"did not answer /ping with 200 within {timeout:g}s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, PING_EVERY)

    async def _watch(self, slot: _Slot) -> None:
        """Health-check one container; restart it with backoff when it dies or stops answering."""
        settings = self._settings
        attempt = 0
        healthy_since = time.monotonic()
        while True:
            reason = await self._until_unhealthy(slot)
            slot.container.state = ContainerState.RESTARTING
            logger.warning("%s %s; restarting", slot.name, reason)
            if slot.handle is not None and slot.handle.alive:
                await slot.handle.stop(settings.stop_grace)
            attempt = backoff_attempt(
                attempt, time.monotonic() - healthy_since, settings.restart_reset_after
            )
            while True:
                delay = restart_delay(
                    attempt, settings.restart_backoff, settings.restart_backoff_max
                )
                attempt += 1
                await asyncio.sleep(delay)
                slot.container.restarts += 1
                try:
                    await self._launch(slot)
                except (_NotHealthy, BackendError) as exc:
                    logger.error("%s: restart failed: %s\n%s", slot.name, exc, slot.log.tail_text())
                    continue
                except Exception:  # keep supervising whatever happened; the log has the details
                    logger.exception("%s: restart failed", slot.name)
                    continue
                break
            slot.container.state = ContainerState.HEALTHY
            slot.container.generation += 1
            healthy_since = time.monotonic()
            logger.info("%s is healthy again (restart %d)", slot.name, slot.container.restarts)
            for hook in slot.container.on_ready:
                try:
                    hook()
                except Exception:  # a listener's bug must not stop supervision
                    logger.exception("%s: on_ready hook failed", slot.name)

    async def _until_unhealthy(self, slot: _Slot) -> str:
        """Return why the running container needs a restart: it exited, or failed its pings."""
        handle = slot.handle
        assert handle is not None
        exited = asyncio.create_task(handle.wait())
        failures = 0
        try:
            while True:
                done, _ = await asyncio.wait({exited}, timeout=self._settings.health_interval)
                if done:
                    return f"exited with code {exited.result()}"
                if await ping(handle.url, timeout=self._settings.ping_timeout):
                    failures = 0
                    continue
                failures += 1
                logger.warning("%s: /ping failed (%d in a row)", slot.name, failures)
                if failures >= self._settings.health_failures:
                    return f"failed {failures} health checks in a row"
        finally:
            if not exited.done():
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await exited

    async def _stop(self, slot: _Slot) -> None:
        handle = slot.handle
        if handle is None or not handle.alive:
            return
        code = await handle.stop(self._settings.stop_grace)
        logger.info("%s stopped (exit code %d)", slot.name, code)
