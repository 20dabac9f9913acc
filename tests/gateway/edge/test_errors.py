"""Error classes match botocore's model of the runtime API; unexpected bugs leak no detail."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import botocore.session
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.edge.errors import handle_api_error, handle_unexpected
from gateway.errors import (
    ApiError,
    InternalFailure,
    InvalidRequest,
    ModelError,
    ModelNotReady,
    ServiceUnavailable,
)
from tests.gateway.harness import serve

ERRORS: list[ApiError] = [
    InvalidRequest("bad"),
    ModelError("m", original_status=415, original_message="o", log_stream="logs/x"),
    ModelNotReady("loading"),
    InternalFailure("bug"),
    ServiceUnavailable("down"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_code_status_and_fields_match_botocore_model(error: ApiError) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shapes = {s.name: s for s in model.operation_model("InvokeEndpoint").error_shapes}
    shape = shapes[error.code]
    assert shape.metadata["error"]["httpStatusCode"] == error.status
    assert set(error.body()) <= set(shape.members)


def test_model_error_body_has_original_fields() -> None:
    error = ModelError("m", original_status=500, original_message="boom")
    assert error.body() == {"Message": "m", "OriginalStatusCode": 500, "OriginalMessage": "boom"}


@pytest.fixture(scope="module")
def failing_app() -> Iterator[str]:
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret detail /etc/passwd")

    async def refused(request: Request) -> Response:
        raise ServiceUnavailable("try later")

    app = Starlette(
        routes=[Route("/broken", broken), Route("/refused", refused)],
        exception_handlers={ApiError: handle_api_error, Exception: handle_unexpected},
    )
    with serve(app) as url:
        yield url


def test_unexpected_exception_is_internal_failure_without_detail(
    failing_app: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = httpx.get(f"{failing_app}/broken")
    assert answer.status_code == 500
    assert answer.headers["x-amzn-ErrorType"] == "InternalFailure"
    assert answer.json() == {
        "__type": "InternalFailure",
        "Message": "An internal error occurred in the gateway.",
    }
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert "RuntimeError" in caplog.text


def test_tandem_error_is_rendered_by_the_handler(failing_app: str) -> None:
    answer = httpx.get(f"{failing_app}/refused")
    assert answer.status_code == 503
    assert answer.headers["x-amzn-ErrorType"] == "ServiceUnavailable"
    assert answer.json() == {"__type": "ServiceUnavailable", "Message": "try later"}
    assert answer.headers["x-amzn-RequestId"]
