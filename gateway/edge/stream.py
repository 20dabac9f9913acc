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
import contextlib
import logging
import uuid

from starlette.types import Receive, Scope, Send

from gateway.calls import Call, ClientGone, InvocationRequest
from gateway.edge import eventstream
from gateway.edge.errors import error_response
from gateway.edge.hotpath import Exchange, check_headers, invocation_request, limits, text
from gateway.errors import ApiError, InternalFailure
from gateway.live import Instance
from gateway.serving.invocation import Invocations
from gateway.serving.streamed import Streamed, StreamFailure

log = logging.getLogger("tandem.gateway")

PATH = "/endpoints/{name}/invocations-response-stream"

_LIMITS = limits(
    b"content-type",
    b"x-amzn-sagemaker-accept",
    b"x-amzn-sagemaker-custom-attributes",
    b"x-amzn-sagemaker-target-variant",
    b"x-amzn-sagemaker-target-container-hostname",
    b"x-amzn-sagemaker-inference-id",
    b"x-amzn-sagemaker-inference-component",
)


class ResponseStreamApp:
    """The ASGI app of the route: one streamed invocation per request, framed as events."""

    def __init__(self, invocations: Invocations, max_payload: int) -> None:
        self.invocations = invocations
        self.limit = max_payload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            check_headers(headers, _LIMITS)
        except ApiError as exc:
            await error_response(exc, request_id)(scope, receive, send)
            return
        target = text(headers, b"x-amzn-sagemaker-target-variant")
        exchange = _StreamExchange(scope, receive, send, headers, self.limit, 0.0)
        with contextlib.suppress(ClientGone):
            await self.invocations.stream(
                scope["path_params"]["name"],
                target,
                exchange.read,
                exchange.respond,
                request_id,
                component=text(headers, b"x-amzn-sagemaker-inference-component"),
            )


class _StreamExchange(Exchange):
    """The stream's request (its ``Accept`` in another header, no ``TargetModel``) and answer."""

    __slots__ = ()

    @staticmethod
    def request(headers: dict[bytes, bytes], body: bytes) -> InvocationRequest:
        return invocation_request(headers, body, b"x-amzn-sagemaker-accept", None)

    async def respond(self, call: Call, streamed: Streamed | None = None) -> None:
        if streamed is None:
            await _refuse(call, self.scope, self.receive, self.send)
        else:
            await _stream(call, streamed, self.receive, self.send)


async def _refuse(call: Call, scope: Scope, receive: Receive, send: Send) -> None:
    """A failure before the answer's head: an ordinary SageMaker error answer."""
    assert call.error is not None
    response = error_response(call.error, call.request_id)
    if call.instance is not None:
        response.raw_headers.append(
            (b"x-amzn-invoked-production-variant", call.instance.variant_header)
        )
    await response(scope, receive, send)


async def _stream(call: Call, streamed: Streamed, receive: Receive, send: Send) -> None:
    """The head at once (the client reads it while the first part is made), then each part as a
    ``PayloadPart``; a break after the head is an error event, and the call's error."""
    assert call.instance is not None
    head = _head(call.instance, streamed, call.request_id)
    await send({"type": "http.response.start", "status": 200, "headers": head})
    try:
        await _forward(streamed, receive, send)
    except _Failure as failure:
        call.error = failure.error
        await send({"type": "http.response.body", "body": failure.event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class _Failure(Exception):
    """The stream broke after it started: the event to send instead of more parts."""

    def __init__(self, event: bytes, error: ApiError) -> None:
        super().__init__(error.message)
        self.event = event
        self.error = error


async def _forward(streamed: Streamed, receive: Receive, send: Send) -> None:
    """Each part of ``streamed`` to the client, until it ends or fails.

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

    async def emit(chunk: bytes) -> None:
        part = eventstream.payload_part(chunk)
        await send({"type": "http.response.body", "body": part, "more_body": True})

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await streamed.forward(emit)
    except StreamFailure as failure:
        event = eventstream.model_stream_error(failure.error.message, failure.code)
        raise _Failure(event, failure.error) from None
    except asyncio.CancelledError:
        if not gone.is_set():
            raise
        task.uncancel()
        raise ClientGone from None
    except Exception as exc:  # a bug: the client learns only that the gateway failed
        log.exception("streaming from %s failed", streamed.container.hostname)
        internal = InternalFailure("An internal error occurred in the gateway while streaming.")
        raise _Failure(eventstream.internal_stream_failure(internal.message), internal) from exc
    finally:
        watcher.cancel()


def _head(instance: Instance, answer: Streamed, request_id: str) -> list[tuple[bytes, bytes]]:
    """The answer's headers: the stream's media type, the container's in SageMaker's header."""
    raw = [
        (b"content-type", eventstream.CONTENT_TYPE.encode()),
        (b"x-amzn-invoked-production-variant", instance.variant_header),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    content_type, attributes = answer.content_type, answer.custom_attributes
    if content_type is not None:
        raw.append((b"x-amzn-sagemaker-content-type", content_type.encode("latin-1")))
    if attributes is not None:
        raw.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
    return raw
