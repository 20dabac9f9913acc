"""A ``DeploymentConfig`` SageMaker refuses is a ``ValidationException`` naming what is wrong, and
nothing changes: a real gateway keeps serving its config, through boto3 (a raw client for what
boto3's own checks would stop first)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.guarded import CONFIG, KEYS, Gateway, canary, gateway, models

pytest.importorskip("sklearn")
pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def routing(kind: str, wait: int = 0, **sizes: Any) -> dict[str, Any]:
    config = {"Type": kind, "WaitIntervalInSeconds": wait, **sizes}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": config}}


def percent(value: int) -> dict[str, Any]:
    return {"Type": "CAPACITY_PERCENT", "Value": value}


def rolling(size: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"RollingUpdatePolicy": {"MaximumBatchSize": size, "WaitIntervalInSeconds": 0, **extra}}


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("canary of the whole fleet", "v2",
     routing("CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 1}), "at most 50%"),
    ("canary over half", "v2", routing("CANARY", CanarySize=percent(60)), "canarySize"),
    ("canary without its size", "v2", routing("CANARY"), "CanarySize"),
    ("linear size on a canary", "v2",
     routing("CANARY", CanarySize=percent(10), LinearStepSize=percent(10)), "linearStepSize"),
    ("linear step too small", "v2", routing("LINEAR", LinearStepSize=percent(5)), "10-50%"),
    ("linear step too large", "v2", routing("LINEAR", LinearStepSize=percent(75)), "10-50%"),
    ("a size on all at once", "v2", routing("ALL_AT_ONCE", CanarySize=percent(10)), "CANARY"),
    ("wait past SageMaker's bound", "v2", routing("ALL_AT_ONCE", 3601), "3600"),
    ("negative wait", "v2", routing("ALL_AT_ONCE", -1), "waitIntervalInSeconds"),
    ("timeout under SageMaker's bound", "v2",
     {"BlueGreenUpdatePolicy": {**routing("ALL_AT_ONCE")["BlueGreenUpdatePolicy"],
                                "MaximumExecutionTimeoutInSeconds": 60}}, "600"),
    ("termination wait past the bound", "v2",
     {"BlueGreenUpdatePolicy": {**routing("ALL_AT_ONCE")["BlueGreenUpdatePolicy"],
                                "TerminationWaitInSeconds": 4000}}, "3600"),
    ("an alarm that does not exist", "v2",
     canary(0, 10, AutoRollbackConfiguration={"Alarms": [{"AlarmName": "nowhere"}]}), "nowhere"),
    ("both policies", "v2", {**routing("ALL_AT_ONCE"), **rolling(percent(50))}, "not both"),
    ("rolling on several variants", "two", rolling(percent(50)), "one production variant"),
    ("rolling batch over half", "v2", rolling(percent(80)), "5-50%"),
]  # fmt: skip


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp_path = tmp_path_factory.mktemp("guardrails")
    with gateway(tmp_path) as running:
        running.setup(models(tmp_path))
        running.sm.create_endpoint_config(
            EndpointConfigName="two",
            ProductionVariants=[
                {"VariantName": "A", "ModelName": "v1", "InitialInstanceCount": 1},
                {"VariantName": "B", "ModelName": "v2", "InitialInstanceCount": 1},
            ],
        )
        yield running


@pytest.mark.parametrize(("config", "policy", "named"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_deployment_config_changes_nothing(
    gw: Gateway, config: str, policy: dict[str, Any], named: str
) -> None:
    raw = boto3.client(
        "sagemaker",
        endpoint_url=gw.url,
        config=Config(parameter_validation=False, **_options(CONFIG)),
        **KEYS,
    )
    before = gw.status()
    with pytest.raises(ClientError) as info:
        raw.update_endpoint(EndpointName="ep", EndpointConfigName=config, DeploymentConfig=policy)
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert named in error["Message"], error["Message"]
    after = gw.status()
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == "v1"
    assert "PendingDeploymentSummary" not in after and "FailureReason" not in after
    assert after.get("LastDeploymentConfig") == before.get("LastDeploymentConfig")
    assert gw.answer() == "1"


def test_create_endpoint_checks_and_keeps_its_deployment_config(gw: Gateway) -> None:
    with pytest.raises(ClientError) as info:
        small = routing("LINEAR", LinearStepSize=percent(5))
        gw.sm.create_endpoint(EndpointName="other", EndpointConfigName="v1", DeploymentConfig=small)
    assert "10-50%" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        gw.sm.describe_endpoint(EndpointName="other")
    policy = routing("LINEAR", 3, LinearStepSize=percent(50))
    gw.sm.create_endpoint(EndpointName="kept", EndpointConfigName="v1", DeploymentConfig=policy)
    described = gw.wait_status("InService", endpoint="kept")
    assert described["LastDeploymentConfig"] == policy
    # RetainDeploymentConfig runs the stored one (its steps are in the pending summary).
    gw.sm.update_endpoint(EndpointName="kept", EndpointConfigName="v2",
                          RetainDeploymentConfig=True)  # fmt: skip
    gw.stage("Baking for 3 s: step 1 of 2", endpoint="kept")
    done = gw.wait_status("InService", endpoint="kept")
    assert done["EndpointConfigName"] == "v2" and done["LastDeploymentConfig"] == policy
    assert gw.answer("kept") == "2"
    gw.sm.delete_endpoint(EndpointName="kept")


def _options(config: Config) -> dict[str, Any]:
    return {"retries": config.retries, "read_timeout": config.read_timeout}
