"""The transport-agnostic core: one invocation to a container (Direct) or through all (Serial).

Bytes in, bytes out: the payload is never decoded here. What the HTTP edge needs to render an
answer comes back as an ``InvocationResult``; every failure is raised as a ``ApiError`` whose
message names the container, and in Serial mode the step, that failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gateway.errors import InvalidRequest, ModelError, ServiceUnavailable, truncate
from gateway.live import ContainerRuntime, Instance
from gateway.models.manager import ModelManager
from gateway.models.targets import validate_target
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


@dataclass(slots=True)
class InvocationRequest:
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    target_container: str | None = None
    inference_id: str | None = None


@dataclass(slots=True)
class InvocationResult:
    body: bytes
    content_type: str | None
    custom_attributes: str | None
    #: ``(hostname, seconds)`` for every step that answered, in order.
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def model_seconds(self) -> float:
        return sum(seconds for _, seconds in self.timings)


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

    @property
    def managers(self) -> list[ModelManager]:
        return list(self._managers.values())

    def open(self, endpoints: Iterable[Instance]) -> None:
        """Create the clients for every container that already has a URL (call inside the loop)."""
        for endpoint in endpoints:
            for container in endpoint.containers:
                if container.url:
                    self.upstream(container)

    async def retire(self, endpoint: Instance) -> list[ModelManager]:
        """Forget ``endpoint``'s clients (closed) and managers (returned: the caller closes)."""
        managers = []
        for container in endpoint.containers:
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
        endpoint: Instance,
        request: InvocationRequest,
        timings: list[tuple[str, float]] | None = None,
        *,
        timeout: float | None = None,
        max_body: int | None = None,
    ) -> InvocationResult:
        """Run ``request``; ``timings`` (if given) collects each answered step, even on failure.

        ``timeout`` and ``max_body`` replace the endpoint's ``timeout`` and the gateway's
        TANDEM_MAX_PAYLOAD for this call only: an asynchronous request has its own
        InvocationTimeoutSeconds and may answer up to TANDEM_ASYNC_MAX_BYTES.
        """
        steps = self._route(endpoint, request)
        deadline = time.monotonic() + (endpoint.spec.timeout if timeout is None else timeout)
        limit = self.max_payload if max_body is None else max_body
        done: list[tuple[str, float]] = timings if timings is not None else []
        body = request.body
        content_type = request.content_type
        custom_attributes: str | None = None
        last = len(steps) - 1
        for index, container in enumerate(steps):
            headers = self._headers(request, content_type, accept=index == last)
            step = (index + 1, len(steps)) if len(steps) > 1 else None
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
                    assert request.target_model is not None  # _route checked it
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
            if not 200 <= response.status < 300:
                raise model_error(
                    container, step, response.status, response.body, self.log_stream(container)
                )
            body = response.body
            content_type = response.headers.get("Content-Type")
            custom_attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        return InvocationResult(body, content_type, custom_attributes, done)

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

    def _route(self, endpoint: Instance, request: InvocationRequest) -> list[ContainerRuntime]:
        return route(endpoint, request.target_container, request.target_model)

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


def where(container: ContainerRuntime, step: tuple[int, int] | None) -> str:
    if step is None:
        return f"Container {container.hostname}"
    return f"Container {container.hostname} (step {step[0]} of {step[1]})"


def model_error(
    container: ContainerRuntime,
    step: tuple[int, int] | None,
    status: int,
    body: bytes,
    log_stream: str | None,
) -> ModelError:
    kind = "client" if 400 <= status < 500 else "server"
    original = truncate(body.decode("utf-8", errors="replace"))
    message = (
        f'Received {kind} error ({status}) from {container.hostname} with message "{original}".'
    )
    if step is not None:
        message += f" The failing step is {step[0]} of {step[1]} in the Serial pipeline."
    return ModelError(
        message, original_status=status, original_message=original, log_stream=log_stream
    )


def timed_out(
    container: ContainerRuntime, step: tuple[int, int] | None, log_stream: str | None
) -> ModelError:
    # SageMaker's observed form: a ModelError with original status 0 naming the slow container.
    original = (
        f"Your invocation timed out while waiting for a response from container "
        f"{container.hostname}. Review the latency metrics for each container, resolve the "
        "issue, and try again."
    )
    return model_error(container, step, 0, original.encode(), log_stream)


def route(
    endpoint: Instance,
    target: str | None,
    target_model: str | None,
    *,
    streaming: bool = False,
) -> list[ContainerRuntime]:
    """The containers a request goes through, all healthy, or the error to answer.

    ``streaming``: InvokeEndpointWithResponseStream, which has no TargetModel to name a model of a
    MultiModel container with.
    """
    hostnames = ", ".join(c.hostname for c in endpoint.containers)
    if endpoint.direct:
        if target is None:
            raise InvalidRequest(
                f"Endpoint {endpoint.name} uses Direct execution: the request needs the "
                "X-Amzn-SageMaker-Target-Container-Hostname header naming one of its "
                f"containers ({hostnames})."
            )
        container = endpoint.container(target)
        if container is None:
            raise InvalidRequest(
                f"Container hostname {target} not found in endpoint {endpoint.name}. Valid "
                f"hostnames: {hostnames}."
            )
        steps = [container]
    else:
        if target is not None:
            raise InvalidRequest(
                f"Endpoint {endpoint.name} uses Serial execution and does not support the "
                "target container hostname header."
            )
        steps = endpoint.containers
    multi = [c for c in steps if c.spec.mode is Mode.MULTI_MODEL]
    if multi and streaming:
        raise InvalidRequest(
            f"Container {multi[0].hostname} of endpoint {endpoint.name} hosts many models, which "
            "InvokeEndpointWithResponseStream cannot name (it has no TargetModel): use "
            "InvokeEndpoint."
        )
    if target_model is not None and not multi:
        raise InvalidRequest(
            f"Endpoint {endpoint.name} is not a multi-model endpoint and does not support "
            "target model header."
        )
    if multi:
        if target_model is None:
            raise InvalidRequest(
                f"Container {multi[0].hostname} of endpoint {endpoint.name} hosts many "
                "models: the request needs the X-Amzn-SageMaker-Target-Model header naming "
                "one (a path under its model_data prefix)."
            )
        validate_target(target_model)
    for container in steps:
        if not container.healthy or not container.url:
            raise ServiceUnavailable(
                f"Container {container.hostname} of endpoint {endpoint.name} is "
                f"{container.state.value}, not InService. Try again later."
            )
    return list(steps)


def unreachable(container: ContainerRuntime, exc: Exception) -> ServiceUnavailable:
    log.warning("container %s/%s unreachable: %s", container.endpoint, container.hostname, exc)
    return ServiceUnavailable(
        f"Container {container.hostname} of endpoint {container.endpoint} is not reachable; "
        "it may be restarting. Try again later."
    )
