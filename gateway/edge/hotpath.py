"""``POST /endpoints/{name}/invocations`` as a raw ASGI app: the gateway's hot path.

Every request pays for what runs here, so it skips what starlette's router, ``Request`` and
``Response`` would add per request (routing by regex, header dicts built twice, middleware frames):
the path is split by hand, the body is read straight from ``receive`` and the answer's headers
are a list of byte pairs. ``InvocationsShortcut`` sends matching requests here before
starlette's router; the same app is also mounted as the route, so both ways answer alike.

The body is read whole by ``read_body``, refused as soon as it is known to exceed the limit; the
SigV4 check and the asynchronous route read bodies the same way, so an oversized body gets the
same answer wherever it is caught. Everything else an invocation does is the invocation core's
(``gateway.serving.invocation``): this module only turns HTTP into its call and its ``Call``
back into HTTP.
"""

from __future__ import annotations

import time
import uuid
from itertools import count

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.calls import Call, ClientGone, InvocationRequest
from gateway.edge.errors import error_response
from gateway.errors import ApiError, InvalidRequest
from gateway.serving.invocation import Invocations

PREFIX = "/endpoints/"
SUFFIX = "/invocations"
STREAM_SUFFIX = "/invocations-response-stream"
ASYNC_SUFFIX = "/async-invocations"

HeaderLimits = tuple[tuple[bytes, str, int, int], ...]
# (header, SageMaker's member name, min length, max length), as botocore's model has them.
LIMITS: dict[bytes, tuple[str, int, int]] = {
    b"content-type": ("contentType", 0, 1024),
    b"x-amzn-sagemaker-accept": ("accept", 0, 1024),
    b"x-amzn-sagemaker-custom-attributes": ("customAttributes", 0, 1024),
    b"x-amzn-sagemaker-target-model": ("targetModel", 1, 1024),
    b"x-amzn-sagemaker-target-variant": ("targetVariant", 0, 63),
    b"x-amzn-sagemaker-target-container-hostname": ("targetContainerHostname", 0, 63),
    b"x-amzn-sagemaker-inference-id": ("inferenceId", 1, 64),
    b"x-amzn-sagemaker-inference-component": ("inferenceComponentName", 0, 63),
}


def limits(*headers: bytes) -> HeaderLimits:
    """The limits of ``headers``, checked in this order, once per request."""
    return tuple((h, *LIMITS[h]) for h in headers)


_HEADER_LIMITS = limits(
    b"x-amzn-sagemaker-custom-attributes",
    b"x-amzn-sagemaker-target-model",
    b"x-amzn-sagemaker-target-variant",
    b"x-amzn-sagemaker-target-container-hostname",
    b"x-amzn-sagemaker-inference-id",
    b"x-amzn-sagemaker-inference-component",
)


class RequestIds:
    """SageMaker-shaped request ids (uuid4 text) for a fraction of ``uuid4()``'s cost.

    A random uuid4 prefix per process, then a 48-bit counter from a random start: unique within a
    process, and across processes as unique as the 74 random bits of the prefix.
    """

    def __init__(self) -> None:
        seed = uuid.uuid4()
        self._prefix = str(seed)[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-": version and variant kept
        self._count = count(seed.int & 0xFFFFFFFFFFFF)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


class InvocationsApp:
    """The ASGI app for ``POST /endpoints/{name}/invocations``: HTTP in and out of the core."""

    def __init__(self, invocations: Invocations, max_payload: int) -> None:
        self.invocations = invocations
        self.limit = max_payload
        self.request_id = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = self.request_id()
        path: str = scope["path"]
        # One dict of the raw (lower-cased, per ASGI) headers: a lookup each, not a scan.
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            check_headers(headers)
        except ApiError as exc:
            await error_response(exc, request_id)(scope, receive, send)
            return
        exchange = Exchange(scope, receive, send, headers, self.limit, started)
        try:
            await self.invocations.invoke(
                path[len(PREFIX) : -len(SUFFIX)],
                text(headers, b"x-amzn-sagemaker-target-variant"),
                exchange.read,
                exchange.respond,
                request_id=request_id,
                target_model=text(headers, b"x-amzn-sagemaker-target-model"),
                component=text(headers, b"x-amzn-sagemaker-inference-component"),
            )
        except ClientGone:
            return


class Exchange:
    """One HTTP request and its answer, as the invocation core sees them: ``read`` when the core
    asks for the body (its instance chosen), ``respond`` with the finished ``Call``."""

    __slots__ = ("headers", "limit", "receive", "scope", "send", "started")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        limit: int,
        started: float,
    ) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.headers, self.limit, self.started = headers, limit, started

    async def read(self) -> InvocationRequest:
        """The body, within the payload limit; ``ClientGone`` when the client left first."""
        headers = self.headers
        body = await read_body(self.receive, headers.get(b"content-length"), self.limit)
        if body is None:
            raise ClientGone
        return self.request(headers, body)

    @staticmethod
    def request(headers: dict[bytes, bytes], body: bytes) -> InvocationRequest:
        """The request made of the headers and the body (the stream's differs)."""
        return invocation_request(headers, body)

    async def respond(self, call: Call) -> None:
        """The answer, with a precomputed list of header byte pairs; or the error in its shape."""
        scope, receive, send, started = self.scope, self.receive, self.send, self.started
        instance, timings = call.instance, call.timings
        if call.error is not None or call.result is None:
            assert call.error is not None
            response = error_response(call.error, call.request_id)
            if instance is not None:
                response.raw_headers.append(
                    (b"x-amzn-invoked-production-variant", instance.variant_header)
                )
            if timings:
                response.headers["Server-Timing"] = server_timing(timings, started)
            await response(scope, receive, send)
            return
        assert instance is not None
        result = call.result
        out = result.body
        raw = [
            (b"content-length", b"%d" % len(out)),
            (b"x-amzn-invoked-production-variant", instance.variant_header),
            (b"x-amzn-requestid", call.request_id.encode()),
            (b"server-timing", server_timing(timings, started).encode()),
        ]
        if result.content_type is not None:
            raw.append((b"content-type", result.content_type.encode("latin-1")))
        if result.custom_attributes is not None:
            attributes = result.custom_attributes.encode("latin-1")
            raw.append((b"x-amzn-sagemaker-custom-attributes", attributes))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": out})


class InvocationsShortcut:
    """Middleware handing the runtime API's two per-request routes straight to their apps.

    ``POST /endpoints/{name}/invocations`` goes to ``invocations`` and
    ``POST /endpoints/{name}/invocations-response-stream`` to ``stream`` (with ``path_params``
    set, as starlette's route would), ``POST /endpoints/{name}/async-invocations`` to
    ``asynchronous``, matching exactly what the routes would (``name`` has no ``/``);
    everything else goes on to the router. Skipping the router and its route scan is a
    tenth of a millisecond per request.
    """

    def __init__(
        self,
        app: ASGIApp,
        invocations: ASGIApp,
        stream: ASGIApp | None = None,
        asynchronous: ASGIApp | None = None,
    ) -> None:
        self.app = app
        self.invocations = invocations
        self.stream = stream
        self.asynchronous = asynchronous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(PREFIX):
                if _names_one(path, SUFFIX):
                    await self.invocations(scope, receive, send)
                    return
                if self.stream is not None and _names_one(path, STREAM_SUFFIX):
                    scope["path_params"] = {"name": path[len(PREFIX) : -len(STREAM_SUFFIX)]}
                    await self.stream(scope, receive, send)
                    return
                if self.asynchronous is not None and _names_one(path, ASYNC_SUFFIX):
                    await self.asynchronous(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _names_one(path: str, suffix: str) -> bool:
    """``path`` is PREFIX, one non-empty name without ``/``, then ``suffix``."""
    return (
        path.endswith(suffix)
        and len(path) > len(PREFIX) + len(suffix)
        and path.find("/", len(PREFIX), -len(suffix)) < 0
    )


def check_headers(headers: dict[bytes, bytes], limits: HeaderLimits = _HEADER_LIMITS) -> None:
    """SageMaker's length limits of the runtime API's headers, in its message shape."""
    for name, field, low, high in limits:
        value = headers.get(name)
        if value is not None and not low <= len(value) <= high:
            raise InvalidRequest(
                f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
                f"Member must have length between {low} and {high} (header {name.decode()})"
            )


def invocation_request(
    headers: dict[bytes, bytes],
    body: bytes,
    accept: bytes = b"accept",
    target_model: bytes | None = b"x-amzn-sagemaker-target-model",
) -> InvocationRequest:
    """InvokeEndpoint's request, from its headers (the stream's has its ``Accept`` in another
    header and no ``TargetModel``)."""
    return InvocationRequest(
        body=body,
        content_type=text(headers, b"content-type"),
        accept=text(headers, accept),
        custom_attributes=text(headers, b"x-amzn-sagemaker-custom-attributes"),
        target_model=None if target_model is None else text(headers, target_model),
        target_container=text(headers, b"x-amzn-sagemaker-target-container-hostname"),
        inference_id=text(headers, b"x-amzn-sagemaker-inference-id"),
    )


def text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def server_timing(timings: list[tuple[str, float]], started: float) -> str:
    """``host;dur=ms`` per step plus the gateway's own ``overhead``, as devtools show it."""
    total = time.perf_counter() - started
    if len(timings) == 1:  # Direct, or a one-step chain: no list, no join
        hostname, seconds = timings[0]
        overhead = total - seconds if total > seconds else 0.0
        return f"{hostname};dur={seconds * 1000:.3f}, overhead;dur={overhead * 1000:.3f}"
    model = 0.0
    parts = []
    for hostname, seconds in timings:
        model += seconds
        parts.append(f"{hostname};dur={seconds * 1000:.3f}")
    parts.append(f"overhead;dur={max(total - model, 0.0) * 1000:.3f}")
    return ", ".join(parts)


async def read_body(receive: Receive, length: bytes | None, limit: int) -> bytes | None:
    """The body, or None when the client left first; ``length`` is its Content-Length header."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: one message, no copy
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def too_large(size: int | None, limit: int) -> InvalidRequest:
    what = "Request body" if size is None else f"Request body of {size} bytes"
    return InvalidRequest(f"{what} exceeds the limit of {limit} bytes.")
