"""Bad calls are refused at submit time in SageMaker's shape, and nothing is queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, toy, wait_for_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("submit")
    (folder / "in.csv").write_text("1,2\n")
    (folder / "dir").mkdir()
    (folder / "store").mkdir()
    specs = [
        spec("echo", str(folder / "out")),
        {"name": "realtime", "containers": [toy()]},
        spec(
            "direct",
            str(folder / "direct"),
            execution="Direct",
            containers=[{"hostname": "a", **toy()}, {"hostname": "b", **toy()}],
        ),
        spec(
            "many",
            str(folder / "many"),
            containers=[
                {"hostname": "zoo", "mode": "MultiModel", "model_data": "./store", **toy()}
            ],
        ),
    ]
    env = {"TANDEM_ASYNC_MAX_BYTES": "1000"}
    with gateway(folder, specs, env=env) as running_gateway:
        yield running_gateway


def refused(gw: Gateway, endpoint: str = "echo", **call: Any) -> str:
    before = gw.rows()
    with pytest.raises(ClientError) as caught:
        gw.raw.invoke_endpoint_async(EndpointName=endpoint, **call)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationError"
    assert gw.rows() == before  # nothing queued
    return str(error["Message"])


def test_an_endpoint_without_async_config_or_unknown_is_refused(gw: Gateway) -> None:
    here = str(gw.state.parent / "in.csv")
    assert "not configured for asynchronous inference" in refused(
        gw, "realtime", InputLocation=here
    )
    assert "Endpoint nowhere of account 000000000000 not found" in refused(
        gw, "nowhere", InputLocation=here
    )


def test_inputs_missing_outside_the_roots_a_folder_or_too_big(gw: Gateway) -> None:
    folder = gw.state.parent
    assert "outside" in refused(gw, InputLocation="/etc/hostname")
    assert "TANDEM_MODEL_ROOTS" in refused(gw, InputLocation="/etc/hostname")
    assert "could not find" in refused(gw, InputLocation=str(folder / "missing.csv"))
    assert "folder" in refused(gw, InputLocation=str(folder / "dir"))
    (folder / "big.csv").write_bytes(b"1" * 1001)
    assert "TANDEM_ASYNC_MAX_BYTES" in refused(gw, InputLocation=str(folder / "big.csv"))
    assert "http:// is not supported" in refused(gw, InputLocation="http://example.com/x")


def test_ttl_timeout_and_output_names_out_of_range(gw: Gateway) -> None:
    here = str(gw.state.parent / "in.csv")
    assert "requestTTLSeconds" in refused(gw, InputLocation=here, RequestTTLSeconds=59)
    assert "requestTTLSeconds" in refused(gw, InputLocation=here, RequestTTLSeconds=21601)
    assert "invocationTimeoutSeconds" in refused(
        gw, InputLocation=here, InvocationTimeoutSeconds=3601
    )
    assert "'.' or '..'" in refused(gw, InputLocation=here, S3OutputPathExtension="a/../../up")
    assert "filename" in refused(gw, InputLocation=here, Filename="a.b.c")
    assert "inferenceId" in refused(gw, InputLocation=here, InferenceId="x" * 65)


def test_an_inline_body_with_an_input_location_or_no_input_at_all(gw: Gateway) -> None:
    here = str(gw.state.parent / "in.csv")
    url = f"{gw.url}/endpoints/echo/async-invocations"
    before = gw.rows()
    both = httpx.post(url, content=b"1,2", headers={"X-Amzn-SageMaker-InputLocation": here})
    assert both.status_code == 400
    assert both.headers["x-amzn-ErrorType"] == "ValidationError"
    assert "mutually exclusive" in both.json()["Message"]
    neither = httpx.post(url)
    assert neither.status_code == 400 and "needs an input" in neither.json()["Message"]
    huge = httpx.post(url, content=b"1" * 128_001)
    assert huge.status_code == 400 and "128000" in huge.json()["Message"]
    bad_ttl = httpx.post(
        url,
        headers={"X-Amzn-SageMaker-InputLocation": here, "X-Amzn-SageMaker-RequestTTLSeconds": "x"},
    )
    assert bad_ttl.status_code == 400 and "integer" in bad_ttl.json()["Message"]
    assert gw.rows() == before


def test_an_inline_body_is_queued_and_answered(gw: Gateway) -> None:
    url = f"{gw.url}/endpoints/echo/async-invocations"
    answer = httpx.post(
        url, content=b"inline,1", headers={"X-Amzn-SageMaker-Content-Type": "text/csv"}
    )
    assert answer.status_code == 202
    location = answer.headers["X-Amzn-SageMaker-OutputLocation"]
    assert answer.json()["InferenceId"] in location
    assert wait_for_file(Path(location)) == b"inline,1"


def test_invoke_endpoint_async_has_no_member_to_route_with() -> None:
    """What the refusals below rest on: botocore's model of the operation has no
    TargetContainerHostname and no TargetModel (InvokeEndpoint has both)."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    members = set(model.operation_model("InvokeEndpointAsync").input_shape.members)
    assert "InputLocation" in members
    assert not members & {"TargetContainerHostname", "TargetModel", "TargetVariant"}
    realtime = set(model.operation_model("InvokeEndpoint").input_shape.members)
    assert {"TargetContainerHostname", "TargetModel"} <= realtime


def test_a_direct_endpoint_or_a_multi_model_container_is_refused(gw: Gateway) -> None:
    here = str(gw.state.parent / "in.csv")
    direct = refused(gw, "direct", InputLocation=here)
    assert "Endpoint direct uses Direct execution" in direct
    assert "X-Amzn-SageMaker-Target-Container-Hostname" in direct and "(a, b)" in direct
    assert "InvokeEndpointAsync does not have (no TargetContainerHostname)" in direct
    many = refused(gw, "many", Body=b"1,2")
    assert "Container zoo of endpoint many hosts many models" in many
    assert "InvokeEndpointAsync does not have (no TargetModel)" in many
    # The real-time routing headers, sent anyway, are not read: still refused, nothing queued.
    before = gw.rows()
    for endpoint, header in (
        ("direct", "X-Amzn-SageMaker-Target-Container-Hostname"),
        ("many", "X-Amzn-SageMaker-Target-Model"),
    ):
        answer = httpx.post(
            f"{gw.url}/endpoints/{endpoint}/async-invocations",
            headers={"X-Amzn-SageMaker-InputLocation": here, header: "a"},
        )
        assert answer.status_code == 400, answer.text
        assert answer.headers["x-amzn-ErrorType"] == "ValidationError"
        assert "InvokeEndpointAsync does not have" in answer.json()["Message"]
    assert gw.rows() == before
    # InvokeEndpoint, which can name the container, still answers.
    answer = gw.runtime.invoke_endpoint(
        EndpointName="direct", TargetContainerHostname="b", Body=b"1,2", ContentType="text/csv"
    )
    assert answer["Body"].read() == b"1,2"
