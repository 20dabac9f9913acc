"""The JSON 1.1 route: role checks, bugs that leak nothing, body limits, and a lazy botocore."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import botocore.session
import httpx
import pytest
from botocore.exceptions import ClientError
from starlette.requests import Request

from gateway.control import AccessDenied, ControlPlane, control_app
from gateway.control.route import MAX_BODY
from gateway.errors import (
    ApiError,
    ControlError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
)
from gateway.state import FILENAME, StateStore
from tests.gateway.control.conftest import World, client
from tests.gateway.harness import serve
from tests.support import PYTHON, ROOT


@pytest.fixture
def guarded(world: World) -> Iterator[str]:
    """The same plane behind a role check: only the ``admin`` key passes."""

    async def authorize(request: Request) -> None:
        if "Credential=admin/" not in request.headers.get("authorization", ""):
            raise AccessDenied("The key has the invoke role; the control plane needs admin.")

    with serve(control_app(world.plane, authorize=authorize)) as url:
        yield url


def test_an_invoke_key_is_denied_every_call(world: World, guarded: str) -> None:
    import boto3

    invoke = boto3.client(
        "sagemaker",
        endpoint_url=guarded,
        region_name="us-east-1",
        aws_access_key_id="invoker",
        aws_secret_access_key="x",
    )
    before = world.snapshot()
    for call in (
        lambda: invoke.list_endpoints(),
        lambda: invoke.create_model(ModelName="m", PrimaryContainer={"Image": "sklearn"}),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "admin" in err.value.response["Error"]["Message"]
    assert world.snapshot() == before
    admin = boto3.client(
        "sagemaker",
        endpoint_url=guarded,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="x",
    )
    assert admin.list_endpoints()["Endpoints"] == []


def test_a_bug_answers_internal_failure_without_details(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.store.close()  # every call now fails inside sqlite3
    with pytest.raises(ClientError) as err:
        world.sm.list_models()
    error = err.value.response["Error"]
    assert error["Code"] == "InternalFailure"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "sqlite" not in error["Message"].lower() and "request" in error["Message"]
    assert any("control plane call failed" in r.message for r in caplog.records)


def test_an_oversized_body_is_refused_unread(world: World) -> None:
    response = httpx.post(
        world.url,
        content=b"{" + b" " * MAX_BODY + b"}",
        headers={
            "X-Amz-Target": "SageMaker.ListModels",
            "Content-Type": "application/x-amz-json-1.1",
        },
        timeout=60,
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"


def test_error_classes_are_api_errors_with_sagemakers_codes() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    declared = {shape.name for shape in model.error_shapes}
    for cls in (ResourceInUse, ResourceLimitExceeded, ResourceNotFound):
        assert cls.code in declared
    error = AccessDenied("no")
    assert isinstance(error, ApiError) and isinstance(error, ControlError)
    assert error.body() == {"__type": "AccessDeniedException", "message": "no"}
    assert error.status == 400


def test_importing_the_control_plane_does_not_load_botocore() -> None:
    probe = "import sys, gateway.control, gateway.state; print('botocore' in sys.modules)"
    out = subprocess.run(
        [PYTHON, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_restart_on_the_same_state_folder_answers_the_same(world: World) -> None:
    world.model()
    world.config()
    world.endpoint()
    described = world.sm.describe_endpoint(EndpointName="e")
    store = StateStore(world.state / FILENAME)
    again = ControlPlane(store, model_roots=[world.model_dir])
    try:
        with serve(control_app(again)) as url:
            got = client(url).describe_endpoint(EndpointName="e")
        for key in ("EndpointArn", "EndpointStatus", "EndpointConfigName", "CreationTime"):
            assert got[key] == described[key]
        plan = again.plan("e")
        assert plan is not None and plan.spec.containers[0].model_data == str(world.model_dir)
        assert plan.instance_count == 1 and plan.pending_spec is None
        assert again.plan("nope") is None
    finally:
        store.close()
