"""The transport-agnostic core: one invocation to a container (Direct) or through all (Serial).

Bytes in, bytes out: the payload is never decoded here. What the HTTP edge needs to render an
answer comes back as an ``InvocationResult``; every failure is raised as a ``ApiError`` whose
message names the container, and in Serial mode the step, that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from gateway.calls import InvocationRequest, InvocationResult, own_seconds
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.live import ContainerRuntime, Instance
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.targets import validate_target
from gateway.serving.failures import model_error, timed_out, unreachable, where
from gateway.serving.streamed import Streamed
from gateway.upstream import (
    Upstream,
    UpstreamBodyTooLarge,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    create_upstream,
)
from gateway.upstream.streaming import StreamConnections
from pipelines.spec import Mode

log = logging.getLogger("tandem.gateway")

INVOCATIONS = "/invocations"


class Dispatcher:
    """Runs invocations; owns each container's pooled upstream and MultiModel model manager."""

    def __init__(
        self,
        *,
        upstream: str = "httptools",
        max_payload: int,
        log_stream: Callable[[ContainerRuntime], str | None] | None = None,
    ) -> None:
        self.upstream_kind = upstream
        self.max_payload = max_payload
        #: Where a failing container's log lives, for ``ModelError.LogStreamArn`` (None: omitted).
        self.log_stream = log_stream or (lambda _container: None)
        self._retired: set[asyncio.Task[None]] = set()
        self._upstreams: dict[ContainerRuntime, Upstream] = {}
        self._managers: dict[ContainerRuntime, ModelManager] = {}
        #: Kept-alive connections for streamed answers (InvokeEndpointWithResponseStream).
        self.streams = StreamConnections()

    def host_models(self, managers: Mapping[ContainerRuntime, ModelManager]) -> None:
        """Route the MultiModel containers' invocations through these managers."""
        self._managers.update(managers)

    def manager(self, container: ContainerRuntime) -> ModelManager | None:
        return self._managers.get(container)

    def in_use(self, instance: Instance, target: str) -> int | None:
        """``target``'s requests in flight on ``instance`` (0 while it loads), None if it is
        neither loaded nor loading there: what routing by model reads."""
        for container in instance.containers:
            manager = self._managers.get(container)
            if manager is not None:
                entry = manager.loaded_models.get(target)
                if entry is not None:
                    return entry.in_use
                return 0 if manager.is_loading(target) else None
        return None

    @property
    def managers(self) -> list[ModelManager]:
        return list(self._managers.values())

    def open(self, instances: Iterable[Instance]) -> None:
        """Create the clients for every container that already has a URL (call inside the loop)."""
        for instance in instances:
            for container in instance.containers:
                if container.url:
                    self.upstream(container)

    async def retire(self, instance: Instance) -> list[ModelManager]:
        """Forget ``instance``'s clients (closed) and managers (returned: the caller closes)."""
        managers = []
        for container in instance.containers:
            self.streams.drop(container.url)
            upstream = self._upstreams.pop(container, None)
            if upstream is not None:
                await upstream.aclose()
            manager = self._managers.pop(container, None)
            if manager is not None:
                managers.append(manager)
        return managers

    async def aclose(self) -> None:
        self.streams.aclose()
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        for upstream in upstreams:
            await upstream.aclose()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    def upstream(self, container: ContainerRuntime) -> Upstream:
        """The container's client, replaced when the supervisor moved it to a new URL."""
        current = self._upstreams.get(container)
        if current is not None and current.base_url == container.url.rstrip("/"):
            return current
        if current is not None:
            self.streams.drop(current.base_url)
            task = asyncio.get_running_loop().create_task(current.aclose())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        upstream = self._upstreams[container] = create_upstream(self.upstream_kind, container.url)
        return upstream

    async def invoke(
        self,
        instance: Instance,
        request: InvocationRequest,
        timings: list[tuple[str, float]] | None = None,
        *,
        timeout: float | None = None,
        max_body: int | None = None,
        reported: list[float | None] | None = None,
    ) -> InvocationResult:
        """Run ``request``; ``timings`` (if given) collects each answered step, even on failure,
        and ``reported`` (if given) each one's time by its container's own clock.

        ``timeout`` and ``max_body`` replace the endpoint's ``timeout`` and the gateway's
        TANDEM_MAX_PAYLOAD for this call only: an asynchronous request has its own
        InvocationTimeoutSeconds and may answer up to TANDEM_ASYNC_MAX_BYTES.
        """
        steps = self._route(instance, request)
        deadline = time.monotonic() + (instance.spec.timeout if timeout is None else timeout)
        limit = self.max_payload if max_body is None else max_body
        done: list[tuple[str, float]] = timings if timings is not None else []
        body, content_type, attributes = await self._steps(
            steps, len(steps), request, deadline, limit, done, reported
        )
        return InvocationResult(body, content_type, attributes, done)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        instance: Instance,
        request: InvocationRequest,
        timings: list[tuple[str, float]],
        reported: list[float | None] | None = None,
    ) -> AsyncIterator[Streamed]:
        """The answer of ``instance`` in parts: the steps before the last are ordinary calls
        (the same loop as ``invoke``), the last one's answer is read as it arrives.

        Until the head arrived a failure raises as in ``invoke``; after, ``Streamed.forward``
        raises ``StreamFailure``.
        """
        steps = route(instance, request.target_container, None, streaming=True)
        deadline = time.monotonic() + instance.spec.timeout
        count = len(steps)
        body, content_type, attributes = await self._steps(
            steps[:-1], count, request, deadline, self.max_payload, timings, reported
        )
        last = steps[-1]
        step = (count, count) if count > 1 else None
        headers = self._headers(request, content_type, accept=True)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise timed_out(last, step, self.log_stream(last))
        ends = asyncio.get_running_loop().time() + remaining
        begun = time.perf_counter()
        try:
            post = self.streams.post(last.url, INVOCATIONS, body, headers, timeout=remaining)
            async with post as answer:
                if not 200 <= answer.status < 300:
                    async with asyncio.timeout_at(ends):
                        text = await answer.read(self.max_payload)
                    timings.append((last.hostname, time.perf_counter() - begun))
                    if reported is not None:  # an error is answered whole, its time on it
                        reported.append(own_seconds(answer.header("Server-Timing")))
                    raise model_error(last, step, answer.status, text, self.log_stream(last))
                own = answer.header("X-Amzn-SageMaker-Custom-Attributes")
                streamed = Streamed(answer, own or attributes, last, step, ends, self.log_stream)
                try:
                    yield streamed
                finally:
                    timings.append((last.hostname, time.perf_counter() - begun))
                    if reported is not None:
                        reported.append(None)  # a stream's own time is not told
        except (TimeoutError, UpstreamTimeout) as exc:
            raise timed_out(last, step, self.log_stream(last)) from exc
        except UpstreamBodyTooLarge as exc:
            raise InvalidRequest(
                f"{where(last, step)} answered with an error body larger than {exc.limit} bytes."
            ) from exc
        except UpstreamUnavailable as exc:
            raise unreachable(last, exc) from exc

    async def _steps(
        self,
        steps: list[ContainerRuntime],
        count: int,
        request: InvocationRequest,
        deadline: float,
        limit: int,
        done: list[tuple[str, float]],
        reported: list[float | None] | None = None,
    ) -> tuple[bytes, str | None, str | None]:
        """The Serial loop (a Direct call is one step): each answer is the next step's body.

        ``steps`` are the first of ``count``; the last of ``count`` gets ``Accept``. Returns the
        last answer's body, ``Content-Type`` and custom attributes.
        """
        body = request.body
        content_type = request.content_type
        custom_attributes: str | None = None
        last = count - 1
        for index, container in enumerate(steps):
            headers = self._headers(request, content_type, accept=index == last)
            step = (index + 1, count) if count > 1 else None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timed_out(container, step, self.log_stream(container))
            started = time.perf_counter()
            try:
                manager = self._managers.get(container)
                if manager is None:
                    response = await self.upstream(container).post(
                        INVOCATIONS, body, headers, timeout=remaining, max_body=limit
                    )
                else:
                    assert request.target_model is not None  # route checked it
                    response, started = await self._invoke_model(
                        container, manager, request.target_model, body, headers, deadline, limit
                    )
            except UpstreamTimeout as exc:
                raise timed_out(container, step, self.log_stream(container)) from exc
            except UpstreamUnavailable as exc:
                raise unreachable(container, exc) from exc
            except UpstreamBodyTooLarge as exc:
                what = "the payload to the next step" if index < last else "the response"
                raise InvalidRequest(
                    f"{where(container, step)} answered with a body larger than {exc.limit} "
                    f"bytes, the limit for {what}."
                ) from exc
            done.append((container.hostname, time.perf_counter() - started))
            if reported is not None:
                reported.append(own_seconds(response.headers.get("Server-Timing")))
            if not 200 <= response.status < 300:
                raise model_error(
                    container, step, response.status, response.body, self.log_stream(container)
                )
            body = response.body
            content_type = response.headers.get("Content-Type")
            custom_attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        return body, content_type, custom_attributes

    async def _invoke_model(
        self,
        container: ContainerRuntime,
        manager: ModelManager,
        target: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
        max_body: int,
    ) -> tuple[UpstreamResponse, float]:
        """Invoke ``target`` in a MultiModel container, loading it first when needed.

        A 404 means the container lost the model (restarted, unloaded by hand): load it again,
        once. Returns the answer and when the invocation proper started (after any load).
        """
        for attempt in range(2):
            entry = await manager.acquire(target, deadline)
            started = time.perf_counter()
            try:
                response = await self.upstream(container).post(
                    entry.invoke_path,
                    body,
                    headers,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    max_body=max_body,
                )
            finally:
                manager.release(entry)
            if response.status != 404 or attempt:
                break
            manager.lost(entry)
        return response, started

    def _route(self, instance: Instance, request: InvocationRequest) -> list[ContainerRuntime]:
        return route(instance, request.target_container, request.target_model)

    @staticmethod
    def _headers(
        request: InvocationRequest, content_type: str | None, *, accept: bool
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept and request.accept is not None:
            headers["Accept"] = request.accept
        if request.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.custom_attributes
        if request.target_model is not None:
            headers["X-Amzn-SageMaker-Target-Model"] = request.target_model
        if request.inference_id is not None:
            headers["X-Amzn-SageMaker-Inference-Id"] = request.inference_id
        return headers


def route(
    instance: Instance,
    target: str | None,
    target_model: str | None,
    *,
    streaming: bool = False,
) -> list[ContainerRuntime]:
    """The containers a request goes through, all healthy, or the error to answer.

    ``streaming``: InvokeEndpointWithResponseStream, which has no TargetModel to name a model of a
    MultiModel container with.
    """
    hostnames = ", ".join(c.hostname for c in instance.containers)
    if instance.direct:
        if target is None:
            raise InvalidRequest(
                f"Endpoint {instance.name} uses Direct execution: the request needs the "
                "X-Amzn-SageMaker-Target-Container-Hostname header naming one of its "
                f"containers ({hostnames})."
            )
        container = instance.container(target)
        if container is None:
            raise InvalidRequest(
                f"Container hostname {target} not found in endpoint {instance.name}. Valid "
                f"hostnames: {hostnames}."
            )
        steps = [container]
    else:
        if target is not None:
            raise InvalidRequest(
                f"Endpoint {instance.name} uses Serial execution and does not support the "
                "target container hostname header."
            )
        steps = instance.containers
    multi = [c for c in steps if c.spec.mode is Mode.MULTI_MODEL]
    if multi and streaming:
        raise InvalidRequest(
            f"Container {multi[0].hostname} of endpoint {instance.name} hosts many models, which "
            "InvokeEndpointWithResponseStream cannot name (it has no TargetModel): use "
            "InvokeEndpoint."
        )
    if target_model is not None and not multi:
        raise InvalidRequest(
            f"Endpoint {instance.name} is not a multi-model endpoint and does not support "
            "target model header."
        )
    if multi:
        if target_model is None:
            raise InvalidRequest(
                f"Container {multi[0].hostname} of endpoint {instance.name} hosts many "
                "models: the request needs the X-Amzn-SageMaker-Target-Model header naming "
                "one (a path under its model_data prefix)."
            )
        validate_target(target_model)
    for container in steps:
        if not container.healthy or not container.url:
            raise ServiceUnavailable(
                f"Container {container.hostname} of endpoint {instance.name} is "
                f"{container.state.value}, not InService. Try again later."
            )
    return list(steps)
