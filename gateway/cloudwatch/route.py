"""CloudWatch on the gateway's port: the routes that take its requests, in all three protocols.

- ``POST /service/GraniteServiceVersion20100801/operation/<Op>`` (``smithy-rpc-v2-cbor``);
- ``POST /`` with ``X-Amz-Target: GraniteServiceVersion20100801.<Op>`` (JSON 1.0);
- ``POST /`` with a form body ``Action=<Op>&Version=2010-08-01`` (query).

The two ``POST /`` routes match only requests that are CloudWatch's (by their header or their
form content type): ``ServiceRoute``s, the one mechanism for other AWS services on the port
(``gateway/services.py``), so they sit before the control plane's ``POST /`` in the app's routes
and everything else goes on to it. The work runs in a worker thread (``acall``): reads flush and
query SQLite.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.cloudwatch import cbor, wire
from gateway.cloudwatch.api import MetricApi
from gateway.cloudwatch.errors import (
    CloudWatchError,
    InternalServiceFault,
    InvalidAction,
    InvalidParameterValue,
    SerializationError,
)
from gateway.services import ServiceRoute, header, target_prefix

log = logging.getLogger("tandem.cloudwatch")

TARGET = "GraniteServiceVersion20100801"
CBOR_PATH = f"/service/{TARGET}/operation/{{operation}}"
VERSION = "2010-08-01"
#: Largest request body (PutMetricData's own limit is 1 MB).
MAX_BODY = 2 * 1024 * 1024
_FORM = "application/x-www-form-urlencoded"
_ERROR_NAMESPACE = "com.amazonaws.cloudwatch#"


def cloudwatch_routes(api: MetricApi) -> list[BaseRoute]:
    """The routes to put before the control plane's ``POST /``."""

    async def run(protocol: str, request: Request, read: Callable[[bytes], Any]) -> Response:
        request_id = str(uuid.uuid4())
        try:
            name, params = read(await _body(request))
            op = wire.operation(name)
            if op is None or name not in api.operations:
                raise InvalidAction(f"The action {name[:100]} is not valid for this web service.")
            if protocol != "query":
                params = wire.typed(op.input_shape, params, "")
            result = await asyncio.to_thread(api.call, name, params)
        except CloudWatchError as exc:
            return _error(protocol, exc, request_id)
        except Exception:
            log.exception("CloudWatch call failed (request %s)", request_id)
            fault = InternalServiceFault(f"An internal error occurred (request {request_id}).")
            return _error(protocol, fault, request_id)
        return _answer(protocol, op, result, request_id)

    async def smithy(request: Request) -> Response:
        name = str(request.path_params["operation"])
        return await run("cbor", request, lambda raw: (name, _decode(cbor.loads, raw)))

    async def json_rpc(request: Request) -> Response:
        name = request.headers.get("x-amz-target", "").removeprefix(f"{TARGET}.")
        return await run("json", request, lambda raw: (name, _decode(json.loads, raw)))

    async def query(request: Request) -> Response:
        def read(raw: bytes) -> tuple[str, dict[str, Any]]:
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            name = form.get("Action", "")
            if form.get("Version", VERSION) != VERSION:
                raise InvalidParameterValue(f"The parameter Version must be {VERSION}.")
            op = wire.operation(name)
            return name, wire.from_query(op.input_shape if op else None, form)

        return await run("query", request, read)

    return [
        Route(CBOR_PATH, smithy, methods=["POST"]),
        ServiceRoute("/", json_rpc, target_prefix(TARGET)),
        ServiceRoute("/", query, lambda s: header(s, b"content-type").lower().startswith(_FORM)),
    ]


async def _body(request: Request) -> bytes:
    """The body, inflated if gzipped (botocore compresses a PutMetricData over 10 KB)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise InvalidParameterValue(f"The request body is larger than {MAX_BODY} bytes.")
    if request.headers.get("content-encoding", "").strip().lower() != "gzip":
        return bytes(raw)
    inflate = zlib.decompressobj(wbits=31)
    try:
        body = inflate.decompress(bytes(raw), MAX_BODY + 1)
    except zlib.error as exc:
        raise SerializationError(f"The request body is not valid gzip: {exc}") from None
    if len(body) > MAX_BODY or inflate.unconsumed_tail:
        raise InvalidParameterValue(f"The request body inflates past {MAX_BODY} bytes.")
    return body


def _decode(loads: Callable[[bytes], Any], raw: bytes) -> dict[str, Any]:
    try:
        value = loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"The request body could not be read: {exc}") from None
    if not isinstance(value, dict):
        raise SerializationError("The request body must be an object.")
    return value


_MEDIA = {"cbor": "application/cbor", "json": "application/x-amz-json-1.0", "query": "text/xml"}


def _answer(protocol: str, op: Any, result: dict[str, Any], request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "cbor":
        headers["smithy-protocol"] = "rpc-v2-cbor"
        body = cbor.dumps(result)
    elif protocol == "json":
        body = json.dumps(wire.plain(result), separators=(",", ":")).encode()
    else:
        body = wire.query_answer(op, result, request_id).encode()
    return Response(body, media_type=_MEDIA[protocol], headers=headers)


def _error(protocol: str, exc: CloudWatchError, request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "query":
        body = wire.query_error(exc, request_id).encode()
    else:
        # awsQueryCompatible: botocore takes the query code from this header.
        headers["x-amzn-query-error"] = f"{exc.code};{exc.fault}"
        fields = {"__type": _ERROR_NAMESPACE + exc.shape, "message": exc.message}
        if protocol == "cbor":
            headers["smithy-protocol"] = "rpc-v2-cbor"
            body = cbor.dumps(fields)
        else:
            body = json.dumps(fields).encode()
    return Response(body, status_code=exc.status, media_type=_MEDIA[protocol], headers=headers)
