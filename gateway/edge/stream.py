"""``POST /endpoints/{name}/invocations-response-stream``: InvokeEndpointWithResponseStream.

The container's answer is forwarded as it arrives, each piece one ``PayloadPart`` of the AWS
event stream (``gateway.edge.eventstream``), so boto3's ``EventStream`` iterates it unchanged.
Until the answer's head arrived, a failure is an ordinary SageMaker error answer (the same
``ModelError``/``ValidationError`` as ``InvokeEndpoint``); once the stream has started, only an
event can say something: ``ModelStreamError`` when the container breaks off or passes the
endpoint's timeout, ``InternalStreamFailure`` when the gateway itself fails. A Serial endpoint
streams its last step; the steps before it are ordinary calls through the pooled clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from gateway.edge import eventstream
from gateway.edge.body import read_body
from gateway.edge.errors import error_response
from gateway.edge.hotpath import check_headers
from gateway.errors import (
    ApiError,
    InternalFailure,
    InvalidRequest,
    ModelError,
    truncate,
)
from gateway.live import ContainerRuntime, Instance
from gateway.metrics import GatewayMetrics
from gateway.serving import dispatch
from gateway.serving.dispatch import INVOCATIONS, Dispatcher, where
from gateway.upstream import UpstreamBodyTooLarge, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.streaming import StreamBroken, StreamedResponse

log = logging.getLogger("tandem.gateway")

PATH = "/endpoints/{name}/invocations-response-stream"
Router = Callable[[str, str | None], Instance]

# (header, SageMaker's member name, min length, max length), as botocore's model has them.
_LIMITS = (
    (b"content-type", "contentType", 0, 1024),
    (b"x-amzn-sagemaker-accept", "accept", 0, 1024),
    (b"x-amzn-sagemaker-custom-attributes", "customAttributes", 0, 1024),
    (b"x-amzn-sagemaker-target-variant", "targetVariant", 0, 63),
    (b"x-amzn-sagemaker-target-container-hostname", "targetContainerHostname", 0, 63),
    (b"x-amzn-sagemaker-inference-id", "inferenceId", 1, 64),
)
# Request header -> the header the container gets (``Accept`` only on the last step).
_FORWARD = {
    b"x-amzn-sagemaker-custom-attributes": "X-Amzn-SageMaker-Custom-Attributes",
    b"x-amzn-sagemaker-inference-id": "X-Amzn-SageMaker-Inference-Id",
}


class _Disconnected(Exception):
    """The client left: nobody is left to answer."""


class _Failure(Exception):
    """The stream broke after it started: the event to send instead of more parts."""

    def __init__(self, event: bytes, error: ApiError) -> None:
        super().__init__(error.message)
        self.event = event
        self.error = error


class ResponseStreamApp:
    """The ASGI app of the route: one streamed invocation per request."""

    def __init__(
        self, route: Router, dispatcher: Dispatcher, metrics: GatewayMetrics, max_payload: int
    ) -> None:
        self.route = route
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.limit = max_payload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        timings: list[tuple[str, float]] = []
        instance: Instance | None = None
        error: ApiError | None = None
        try:
            headers: dict[bytes, bytes] = dict(scope["headers"])
            check_headers(headers, _LIMITS)
            target = _text(headers, b"x-amzn-sagemaker-target-variant")
            instance = self.route(scope["path_params"]["name"], target)
            # Counted from the moment it was routed: a draining endpoint waits for the stream.
            instance.inflight += 1
            try:
                body = await read_body(receive, headers.get(b"content-length"), self.limit)
                if body is None:
                    raise _Disconnected
                error = await self._invoke(
                    instance, headers, body, request_id, timings, receive, send
                )
            finally:
                instance.inflight -= 1
        except ApiError as exc:
            error = exc
            response = error_response(exc, request_id)
            if instance is not None:
                response.raw_headers.append(
                    (b"x-amzn-invoked-production-variant", instance.variant_header)
                )
            await response(scope, receive, send)
        except _Disconnected:
            pass
        if instance is not None:
            self.metrics.endpoint(instance).record(time.perf_counter() - started, timings, error)

    async def _invoke(
        self,
        instance: Instance,
        headers: dict[bytes, bytes],
        body: bytes,
        request_id: str,
        timings: list[tuple[str, float]],
        receive: Receive,
        send: Send,
    ) -> ApiError | None:
        """Run the steps, stream the last; the error the stream ended with, if any."""
        steps = dispatch.route(
            instance,
            _text(headers, b"x-amzn-sagemaker-target-container-hostname"),
            None,
            streaming=True,
        )
        deadline = time.monotonic() + instance.spec.timeout
        forward = {
            name: headers[raw].decode("latin-1") for raw, name in _FORWARD.items() if raw in headers
        }
        content_type = _text(headers, b"content-type")
        custom_attributes: str | None = None
        last = steps[-1]
        for index, container in enumerate(steps[:-1]):
            body, content_type, custom_attributes = await self._call(
                container, (index + 1, len(steps)), body, content_type, forward, deadline, timings
            )
        step: tuple[int, int] | None = (len(steps), len(steps)) if len(steps) > 1 else None
        sent = {**forward}
        if content_type is not None:
            sent["Content-Type"] = content_type
        accept = _text(headers, b"x-amzn-sagemaker-accept")
        if accept is not None:
            sent["Accept"] = accept
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dispatch.timed_out(last, step, self.dispatcher.log_stream(last))
        loop = asyncio.get_running_loop()
        ends = loop.time() + remaining
        begun = time.perf_counter()
        try:
            post = self.dispatcher.streams.post(
                last.url, INVOCATIONS, body, sent, timeout=remaining
            )
            async with post as answer:
                if not 200 <= answer.status < 300:
                    async with asyncio.timeout_at(ends):
                        text = await answer.read(self.limit)
                    timings.append((last.hostname, time.perf_counter() - begun))
                    raise dispatch.model_error(
                        last, step, answer.status, text, self.dispatcher.log_stream(last)
                    )
                attributes = answer.header("X-Amzn-SageMaker-Custom-Attributes")
                head = _head(instance, answer, request_id, attributes or custom_attributes)
                # The head leaves at once: the client reads it while the first part is made.
                await send({"type": "http.response.start", "status": 200, "headers": head})
                try:
                    await self._forward(answer, last, step, ends, receive, send)
                except _Failure as failure:
                    await send(
                        {"type": "http.response.body", "body": failure.event, "more_body": True}
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return failure.error
                finally:
                    timings.append((last.hostname, time.perf_counter() - begun))
                await send({"type": "http.response.body", "body": b""})
                return None
        except (TimeoutError, UpstreamTimeout) as exc:
            raise dispatch.timed_out(last, step, self.dispatcher.log_stream(last)) from exc
        except UpstreamBodyTooLarge as exc:
            raise InvalidRequest(
                f"{where(last, step)} answered with an error body larger than {exc.limit} bytes."
            ) from exc
        except UpstreamUnavailable as exc:
            raise dispatch.unreachable(last, exc) from exc

    async def _forward(
        self,
        answer: StreamedResponse,
        container: ContainerRuntime,
        step: tuple[int, int] | None,
        ends: float,
        receive: Receive,
        send: Send,
    ) -> None:
        """Each chunk of ``answer`` to the client as a ``PayloadPart``, until it ends or fails.

        uvicorn drops what is sent after the client left, so a watcher listens for the client's
        disconnect and cancels the stream: the container's connection closes, and with it the
        container's generator.
        """
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            task.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            async with asyncio.timeout_at(ends):
                async for chunk in answer.chunks():
                    await send(
                        {
                            "type": "http.response.body",
                            "body": eventstream.payload_part(chunk),
                            "more_body": True,
                        }
                    )
        except TimeoutError:
            error = dispatch.timed_out(container, step, self.dispatcher.log_stream(container))
            raise _Failure(
                eventstream.model_stream_error(error.message, "ModelInvocationTimeExceeded"), error
            ) from None
        except StreamBroken as exc:
            message = (
                f"{where(container, step)} closed its streamed answer before it ended ({exc})."
            )
            error = ModelError(
                message,
                original_status=0,
                original_message=truncate(str(exc)),
                log_stream=self.dispatcher.log_stream(container),
            )
            raise _Failure(eventstream.model_stream_error(message, "StreamBroken"), error) from None
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            task.uncancel()
            raise _Disconnected from None
        except Exception as exc:  # a bug: the client learns only that the gateway failed
            log.exception("streaming from %s failed", container.hostname)
            failure = InternalFailure("An internal error occurred in the gateway while streaming.")
            event = eventstream.internal_stream_failure(failure.message)
            raise _Failure(event, failure) from exc
        finally:
            watcher.cancel()

    async def _call(
        self,
        container: ContainerRuntime,
        step: tuple[int, int],
        body: bytes,
        content_type: str | None,
        forward: dict[str, str],
        deadline: float,
        timings: list[tuple[str, float]],
    ) -> tuple[bytes, str | None, str | None]:
        """One step before the last, an ordinary call: its body, content type and attributes."""
        headers = {**forward}
        if content_type is not None:
            headers["Content-Type"] = content_type
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dispatch.timed_out(container, step, self.dispatcher.log_stream(container))
        begun = time.perf_counter()
        try:
            response = await self.dispatcher.upstream(container).post(
                INVOCATIONS, body, headers, timeout=remaining, max_body=self.limit
            )
        except UpstreamTimeout as exc:
            raise dispatch.timed_out(
                container, step, self.dispatcher.log_stream(container)
            ) from exc
        except UpstreamBodyTooLarge as exc:
            raise InvalidRequest(
                f"{where(container, step)} answered with a body larger than {exc.limit} bytes, "
                "the limit for the payload to the next step."
            ) from exc
        except UpstreamUnavailable as exc:
            raise dispatch.unreachable(container, exc) from exc
        timings.append((container.hostname, time.perf_counter() - begun))
        if not 200 <= response.status < 300:
            raise dispatch.model_error(
                container,
                step,
                response.status,
                response.body,
                self.dispatcher.log_stream(container),
            )
        return (
            response.body,
            response.headers.get("Content-Type"),
            response.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
        )


def _head(
    instance: Instance, answer: StreamedResponse, request_id: str, attributes: str | None
) -> list[tuple[bytes, bytes]]:
    """The answer's headers: the stream's media type, the container's in SageMaker's header."""
    raw = [
        (b"content-type", eventstream.CONTENT_TYPE.encode()),
        (b"x-amzn-invoked-production-variant", instance.variant_header),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    content_type = answer.header("Content-Type")
    if content_type is not None:
        raw.append((b"x-amzn-sagemaker-content-type", content_type.encode("latin-1")))
    if attributes is not None:
        raw.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
    return raw


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")
