"""The container's transport-agnostic core: settings, framework, models, and how a request runs.

Loads and predictions run in worker threads so the event loop keeps answering ``/ping`` (small
requests of a model proven fast excepted: :mod:`containers.fastpath`); a prediction longer than
``SAGEMAKER_MODEL_SERVER_TIMEOUT`` is answered with 504 (its thread finishes in the background:
Python cannot kill it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from containers import codecs, frameworks, resources
from containers.batching import Batcher, RowBatching
from containers.batching_metrics import BatchMetrics
from containers.errors import ModelLoadError, PredictionTimeout
from containers.fastpath import SMALL_BODY, FastPath, timed
from containers.frameworks import ModelFramework
from containers.handler import ModelHandler
from containers.registry import HostedModel, ModelRegistry
from containers.settings import ContainerSettings
from containers.workers import WorkerThreads

log = logging.getLogger(__name__)
T = TypeVar("T")
SINGLE_MODEL_NAME = "model"


@dataclass
class Reply:
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


class ModelService:
    """One per worker process: owns the framework instance, the models and the thread pools."""

    def __init__(
        self, settings: ContainerSettings, framework: ModelFramework | None = None
    ) -> None:
        if settings.framework is None and framework is None:
            raise ValueError("no framework: pass --framework or set TANDEM_FRAMEWORK")
        self.settings = settings
        self.framework = framework or frameworks.create(str(settings.framework), settings)
        self.cpus = resources.available_cpus()
        self.models = ModelRegistry(
            self._handler, resources.memory_limit(settings.memory_limit_mb), settings.models_dir
        )
        # Started in start(), after the framework sized its pools: threads apply per-thread limits.
        self._predict_pool: WorkerThreads | None = None
        self._load_pool: WorkerThreads | None = None
        self._unload_pool: WorkerThreads | None = None
        self._batchers: dict[str, Batcher] = {}
        self.batch_metrics = BatchMetrics()
        #: The framework's row stacking, if it has one (checked once: the check is slow).
        self._rows = self.framework if isinstance(self.framework, RowBatching) else None

    def _handler(self, name: str, model_dir: Path) -> ModelHandler:
        return ModelHandler(
            self.framework,
            model_dir,
            name=name,
            program=self.settings.program,
            code_dir=self.settings.code_dir,
            install_requirements=self.settings.install_requirements,
            default_accept=self.settings.default_accept,
        )

    def _loader(self, func: Callable[[], T]) -> asyncio.Future[T]:
        assert self._load_pool is not None, "start() first"
        return self._load_pool.submit(func)

    def _unloader(self, func: Callable[[], T]) -> asyncio.Future[T]:
        assert self._unload_pool is not None, "start() first"
        return self._unload_pool.submit(func)

    async def start(self) -> None:
        """Size thread pools once, then (single-model mode) load the model before serving."""
        predictors = resources.predicting_threads()
        intra, inter = self.framework.thread_counts(self.settings, predictors)
        self.framework.configure_threads(intra, inter)
        # Predictions share threads; loads get their own so a slow load never starves predictions.
        initializer = self.framework.thread_initializer
        self._predict_pool = WorkerThreads(predictors, "predict", initializer)
        self._load_pool = WorkerThreads(2, "load", initializer)
        # Unloads on a thread of their own: the load that asked for the room never waits for
        # another load to end first.
        self._unload_pool = WorkerThreads(1, "unload", initializer)
        log.info(
            "%s container: %d CPUs, %d intra-op / %d inter-op threads, memory limit %s",
            self.framework.name,
            self.cpus,
            intra,
            inter,
            "none" if self.models.memory_limit is None else f"{self.models.memory_limit >> 20} MiB",
        )
        if not self.settings.multi_model:
            model_dir = self.settings.resolved_model_dir.resolve()
            if not model_dir.is_dir():
                raise ModelLoadError(f"model dir {model_dir} (SM_MODEL_DIR) does not exist")
            await self.models.add(SINGLE_MODEL_NAME, str(model_dir), self._loader)

    async def stop(self) -> None:
        # No per-model unload: the process is ending and frees everything at once, while unloading
        # 1,000 models one by one (a gc pass each) would outlast the supervisor's stop grace.
        for pool in (self._load_pool, self._unload_pool):
            if pool is not None:
                pool.shutdown()
        if self._predict_pool is not None:
            self._predict_pool.shutdown()

    async def load(self, name: str, url: str) -> HostedModel:
        return await self.models.add(name, url, self._loader)

    async def unload(self, name: str) -> None:
        await self.models.remove(name, self._unloader)
        if self._batchers.pop(name, None) is not None:
            self.batch_metrics.forget(name)

    def execution_parameters(self) -> dict[str, Any]:
        return {
            "MaxConcurrentTransforms": self.cpus * self.settings.workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, int(self.settings.max_payload_mb)),
        }

    def _fast(self, loaded: HostedModel) -> FastPath:
        fast = loaded.fast
        if fast is None:
            eligible = loaded.handler.module is None  # user code may sleep or wait on I/O
            budget = self.settings.inline_predict_ms / 1e3
            fast = loaded.fast = FastPath(loaded.name, budget, eligible)
        return fast

    def _dispatch(
        self, loaded: HostedModel, func: Callable[[], T], size: int, count: int = 1
    ) -> T | asyncio.Future[T]:
        """Run ``func`` on the loop (small requests of a model proven fast): its result; else in
        a worker thread: a future of it. ``count``: requests in it (a trial records the time of
        one)."""
        fast = self._fast(loaded)
        if fast.runs_inline(size):
            started = time.perf_counter()
            try:
                return func()
            finally:
                fast.ran_inline(time.perf_counter() - started)
        assert self._predict_pool is not None, "start() first"
        if not fast.on_trial(size):
            return self._predict_pool.submit(func)
        trial = self._predict_pool.submit(timed, func)
        result: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def done(ran: asyncio.Future[tuple[T, float]]) -> None:
            if result.done():  # the caller gave up
                return
            exc = ran.exception()
            if exc is not None:
                result.set_exception(exc)
                return
            value, seconds = ran.result()
            fast.timed(seconds / count)
            result.set_result(value)

        trial.add_done_callback(done)
        return result

    async def _execute(self, loaded: HostedModel, func: Callable[[], T], size: int) -> T:
        """:meth:`_dispatch`, awaited within ``SAGEMAKER_MODEL_SERVER_TIMEOUT``."""
        ran = self._dispatch(loaded, func, size)
        if not isinstance(ran, asyncio.Future):
            return ran
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await ran
        except TimeoutError:
            raise self._timed_out(loaded) from None

    def _timed_out(self, loaded: HostedModel) -> PredictionTimeout:
        log.warning("prediction for %s passed %ss", loaded.name, self.settings.timeout)
        return PredictionTimeout(
            f"the prediction took longer than SAGEMAKER_MODEL_SERVER_TIMEOUT="
            f"{self.settings.timeout:g}s"
        )

    def batcher(self, loaded: HostedModel) -> Batcher | None:
        """The model's batcher when batching is on and its requests can be stacked."""
        size = self.settings.max_batch_size
        if size <= 1 or self._rows is None or not loaded.handler.stackable:
            return None
        batcher = self._batchers.get(loaded.name)
        if batcher is None or batcher.model is not loaded.model:
            batcher = self._batchers[loaded.name] = Batcher(
                loaded.name,
                loaded.handler,
                loaded.model,
                self._rows,
                max_size=size,
                max_delay_s=self.settings.max_batch_delay_ms / 1e3,
                timeout_s=self.settings.timeout,
                dispatch=lambda job, body_bytes, count: self._dispatch(
                    loaded, job, body_bytes, count
                ),
                on_loop=lambda body_bytes: self._fast(loaded).runs_inline(body_bytes),
                metrics=self.batch_metrics,
            )
        return batcher

    def arriving(self, loaded: HostedModel) -> AbstractContextManager[None]:
        """Around reading a body: a batch forming for this model may wait for it."""
        batcher = self.batcher(loaded)
        return batcher.arriving() if batcher is not None else nullcontext()

    async def invoke(
        self,
        loaded: HostedModel,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        headers: Mapping[str, str],
    ) -> Reply:
        """Negotiate on the loop (cheap, fails fast), then decode/predict/encode in a thread.

        Small requests of a model proven fast run on the loop instead (:mod:`containers.fastpath`);
        with batching on, small bodies decode on the loop and join their model's batch.
        """
        handler = loaded.handler
        media = handler.resolve_content_type(content_type)
        chosen = handler.resolve_accept(accept)
        if content_type and ";" in content_type:
            body = codecs.transcode_to_utf8(body, content_type)
        context = handler.context(headers)
        size = len(body)
        batcher = self.batcher(loaded) if size <= SMALL_BODY else None
        if batcher is None:
            out, out_type = await self._execute(
                loaded, lambda: handler.invoke(loaded.model, body, media, chosen, context), size
            )
            return Reply(out, out_type, context.response_headers)
        data = handler.input_fn(body, media, context=context)
        found = batcher.rows_of(data)
        if found is None:
            out, out_type = await self._execute(
                loaded, lambda: handler.predict_encode(loaded.model, data, chosen, context), size
            )
            return Reply(out, out_type, context.response_headers)
        key, rows = found
        # No timer per request: the batcher answers 504 when a batch passes the time limit.
        answer = batcher.submit(data, (media, chosen, key), rows, chosen, context, size)
        out, out_type = await answer
        return Reply(out, out_type, context.response_headers)
