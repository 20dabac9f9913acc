"""``POST /endpoints/{name}/async-invocations``: InvokeEndpointAsync's wire format, nothing more.

The route reads SageMaker's headers, checks each against botocore's model of the operation
(lengths, patterns, ranges) and hands an ``AsyncSubmission`` to ``submit``; what happens to it
(roots, the queue, the workers) is ``gateway.asynchronous``'s, which sits above the edge. The
answer is SageMaker's: 202, ``{"InferenceId": ...}`` in the body, the output and failure
locations in headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.credentials import ADMIN
from gateway.edge.errors import error_response
from gateway.edge.hotpath import ASYNC_SUFFIX, PREFIX, read_body
from gateway.errors import ApiError, InvalidRequest

PATH = "/endpoints/{name}/async-invocations"
#: The largest inline ``Body`` (botocore: ``max: 128000``); bigger inputs go through InputLocation.
MAX_INLINE_BYTES = 128_000
TTL_RANGE = (60, 21_600)
TTL_DEFAULT = 21_600
TIMEOUT_RANGE = (1, 3_600)
TIMEOUT_DEFAULT = 900

_ASCII = re.compile(r"^[\x00-\x7f]*$")
_PRINTABLE = re.compile(r"^\S[\x20-\x7e]*$")
_EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
_FILENAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_.]*$")

# (header, SageMaker's member name, min length, max length, pattern or None)
_TEXT = (
    ("x-amzn-sagemaker-content-type", "contentType", 0, 1024, _ASCII),
    ("x-amzn-sagemaker-accept", "accept", 0, 1024, _ASCII),
    ("x-amzn-sagemaker-custom-attributes", "customAttributes", 0, 1024, _ASCII),
    ("x-amzn-sagemaker-inference-id", "inferenceId", 1, 64, _PRINTABLE),
    ("x-amzn-sagemaker-inputlocation", "inputLocation", 1, 1024, None),
    ("x-amzn-sagemaker-s3outputpathextension", "s3OutputPathExtension", 1, 512, _EXTENSION),
    ("x-amzn-sagemaker-filename", "filename", 1, 32, _FILENAME),
)


@dataclass(frozen=True)
class AsyncSubmission:
    """One InvokeEndpointAsync call, its headers checked; exactly one of input_location/body."""

    endpoint: str
    input_location: str | None
    body: bytes | None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    ttl: int = TTL_DEFAULT
    timeout: int = TIMEOUT_DEFAULT
    output_extension: str | None = None
    filename: str | None = None
    #: The caller's role (``gateway.credentials``): what its InputLocation may name.
    role: str = ADMIN


@dataclass(frozen=True)
class Accepted:
    """What the 202 says: the id and where the answer (or the failure) will be."""

    inference_id: str
    output_location: str
    failure_location: str


Submit = Callable[[AsyncSubmission], Awaitable[Accepted]]


class AsyncInvocationsApp:
    """The operation as a plain ASGI app: ``InvocationsShortcut`` hands it its requests
    straight (the router's scan and starlette's request and response objects cost as much as
    the rest of an accepted call), and the route below wraps the same app."""

    def __init__(self, submit: Submit, role: Callable[[Scope], str] | None = None) -> None:
        self.submit = submit
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, headers, body = await self._accept(scope, receive)
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _accept(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        fields = parse_headers(headers)
        length = headers.get("content-length")
        body = await read_body(receive, length.encode() if length else None, MAX_INLINE_BYTES)
        if body is None:  # the client left
            return 400, [], b""
        location = fields.pop("inputLocation")
        if location is not None and body:
            raise InvalidRequest(
                "Body and InputLocation are mutually exclusive: provide exactly one of them "
                "(the header X-Amzn-SageMaker-InputLocation names an input, the body is inline)."
            )
        if location is None and not body:
            raise InvalidRequest(
                "The request needs an input: the X-Amzn-SageMaker-InputLocation header (s3://, "
                f"file:// or a folder path) or an inline body of up to {MAX_INLINE_BYTES} bytes."
            )
        path: str = scope["path"]
        submission = AsyncSubmission(
            endpoint=path[len(PREFIX) : -len(ASYNC_SUFFIX)],
            input_location=location,
            body=None if location is not None else body,
            content_type=fields["contentType"],
            accept=fields["accept"],
            custom_attributes=fields["customAttributes"],
            inference_id=fields["inferenceId"],
            ttl=_integer(
                headers,
                "x-amzn-sagemaker-requestttlseconds",
                "requestTTLSeconds",
                TTL_RANGE,
                TTL_DEFAULT,
            ),
            timeout=_integer(
                headers,
                "x-amzn-sagemaker-invocationtimeoutseconds",
                "invocationTimeoutSeconds",
                TIMEOUT_RANGE,
                TIMEOUT_DEFAULT,
            ),
            output_extension=fields["s3OutputPathExtension"],
            filename=fields["filename"],
            role=ADMIN if self.role is None else self.role(scope),
        )
        accepted = await self.submit(submission)
        answer = json.dumps({"InferenceId": accepted.inference_id}).encode()
        return (
            202,
            [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
                (b"x-amzn-sagemaker-outputlocation", accepted.output_location.encode()),
                (b"x-amzn-sagemaker-failurelocation", accepted.failure_location.encode()),
            ],
            answer,
        )


def async_route(app: AsyncInvocationsApp) -> Route:
    """The route of the same app, for a request the shortcut does not take."""
    return Route(PATH, app, methods=["POST"])


def parse_headers(headers: object) -> dict[str, str | None]:
    """The text headers by member name, each checked as SageMaker checks it (ValidationError)."""
    assert hasattr(headers, "get")
    out: dict[str, str | None] = {}
    for header, member, low, high, pattern in _TEXT:
        value = headers.get(header)
        if value is not None:
            if not low <= len(value) <= high:
                raise InvalidRequest(
                    f"1 validation error detected: Value at '{member}' failed to satisfy "
                    f"constraint: Member must have length between {low} and {high} "
                    f"(header {header})"
                )
            if pattern is not None and not pattern.match(value):
                raise InvalidRequest(
                    f"1 validation error detected: Value '{value[:100]}' at '{member}' failed "
                    f"to satisfy constraint: Member must satisfy regular expression pattern: "
                    f"{pattern.pattern}"
                )
        out[member] = value
    return out


def _integer(
    headers: dict[str, str], header: str, member: str, bounds: tuple[int, int], default: int
) -> int:
    raw = headers.get(header)
    if raw is None:
        return default
    low, high = bounds
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidRequest(
            f"1 validation error detected: Value '{raw[:40]}' at '{member}' failed to satisfy "
            f"constraint: Member must be an integer between {low} and {high}"
        ) from None
    if not low <= value <= high:
        raise InvalidRequest(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must have value between {low} and {high} inclusive"
        )
    return value
