"""Teardown in the order the SageMaker SDKs make it, against a real ``tandem serve``, with boto3.

An endpoint whose config and model were deleted keeps serving what it was deployed with, through
a restart of the gateway on the same state folder; an update to a deleted config is refused as
SageMaker refuses it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import (
    clients,
    deploy,
    invoke,
    processes_of,
    serve_args,
    wait_status,
)
from tests.support import running, wait_until

pytestmark = pytest.mark.slow


def test_sdk_order_teardown_and_an_endpoint_that_outlives_its_config(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args, url = serve_args(state)
    with running(args, url=url, log=tmp_path / "first.log", timeout=60) as first:
        control, runtime = clients(url)
        deploy(control, "kept", "|kept")
        deploy(control, "gone", "|gone")
        deploy(control, "other", "|other")
        control.create_endpoint(EndpointName="kept", EndpointConfigName="kept")
        control.create_endpoint(EndpointName="gone", EndpointConfigName="gone")
        wait_status(control, "kept", "InService")
        wait_status(control, "gone", "InService")

        # SDK v2's predictor.delete_endpoint() + delete_model(), SDK v3's Endpoint.delete() then
        # EndpointConfig.delete(): each call at once, the endpoint still Deleting.
        control.delete_endpoint(EndpointName="gone")
        control.delete_endpoint_config(EndpointConfigName="gone")
        control.delete_model(ModelName="gone")
        control.get_waiter("endpoint_deleted").wait(
            EndpointName="gone", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )

        # Config and model deleted while the endpoint is InService: it keeps serving them.
        control.delete_endpoint_config(EndpointConfigName="kept")
        control.delete_model(ModelName="kept")
        assert invoke(runtime, "kept") == b"ping|kept"
        described = control.describe_endpoint(EndpointName="kept")
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointConfigName"] == "kept"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1

        with pytest.raises(ClientError) as refused:
            control.update_endpoint(EndpointName="kept", EndpointConfigName="kept")
        error = refused.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert error["Message"] == 'Could not find endpoint configuration "kept".'
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0

    args, url = serve_args(state)
    with running(args, url=url, log=tmp_path / "second.log", timeout=60):
        control, runtime = clients(url)
        described = wait_status(control, "kept", "InService")
        assert described["EndpointConfigName"] == "kept"
        assert invoke(runtime, "kept") == b"ping|kept"
        # It can still move on to a config that exists.
        control.update_endpoint(EndpointName="kept", EndpointConfigName="other")
        moved = wait_status(control, "kept", "InService")
        assert moved["EndpointConfigName"] == "other" and "FailureReason" not in moved
        assert invoke(runtime, "kept") == b"ping|other"
        names = [e["EndpointName"] for e in control.list_endpoints()["Endpoints"]]
        assert names == ["kept"]
    assert wait_until(lambda: not processes_of(state), timeout=30, what="no leftovers")


def test_one_account_in_every_arn_and_message(tmp_path: Path) -> None:
    args, url = serve_args(tmp_path / "state")
    with running(args, env={"TANDEM_ACCOUNT": "123456789012"}, url=url, timeout=60):
        control, runtime = clients(url)
        deploy(control, "m", "|m")
        arn = control.describe_model(ModelName="m")["ModelArn"]
        assert arn == "arn:aws:sagemaker:us-east-1:123456789012:model/m"
        created = control.create_endpoint(EndpointName="e", EndpointConfigName="m")
        assert created["EndpointArn"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"
        for call in (
            lambda: invoke(runtime, "nowhere"),
            lambda: runtime.invoke_endpoint_async(
                EndpointName="nowhere", InputLocation="s3://b/k", ContentType="text/plain"
            ),
        ):
            with pytest.raises(ClientError) as missing:
                call()
            error = missing.value.response["Error"]
            assert error["Code"] == "ValidationError"
            assert error["Message"] == "Endpoint nowhere of account 123456789012 not found."
        wait_status(control, "e", "InService")


def test_an_update_shows_its_pending_deployment_even_once_its_config_is_gone(
    tmp_path: Path,
) -> None:
    args, url = serve_args(tmp_path / "state")
    with running(args, env={"TANDEM_START_TIMEOUT": "3"}, url=url, timeout=60):
        control, runtime = clients(url)
        deploy(control, "old", "|old")
        deploy(control, "never", "|never", CONTRACT_PING_STATUS="503")  # never healthy
        control.create_endpoint(EndpointName="e", EndpointConfigName="old")
        wait_status(control, "e", "InService")
        control.update_endpoint(EndpointName="e", EndpointConfigName="never")
        control.delete_endpoint_config(EndpointConfigName="never")
        control.delete_model(ModelName="never")
        during = control.describe_endpoint(EndpointName="e")
        assert during["EndpointStatus"] == "Updating" and during["EndpointConfigName"] == "old"
        pending = during["PendingDeploymentSummary"]
        assert pending["EndpointConfigName"] == "never"
        assert pending["StartTime"] >= during["CreationTime"]
        (variant,) = pending["ProductionVariants"]
        assert variant["VariantName"] == "AllTraffic" and variant["CurrentInstanceCount"] == 0
        assert [s["Status"] for s in variant["VariantStatus"]] == ["Creating"]
        assert invoke(runtime, "e") == b"ping|old"
        back = wait_status(control, "e", "InService")
        assert back["EndpointConfigName"] == "old" and "PendingDeploymentSummary" not in back
        assert "did not answer /ping" in back["FailureReason"]
        assert invoke(runtime, "e") == b"ping|old"
