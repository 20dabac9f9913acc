"""Asynchronous endpoints made through the control plane: boto3's ``sagemaker`` client against a
real ``tandem serve`` started with no spec files, inputs and answers on the moto S3 server.

CreateEndpointConfig's AsyncInferenceConfig (S3OutputPath on S3 or a folder, S3FailurePath,
ClientConfig, NotificationConfig) must come back from the Describe calls as given and be what the
endpoint runs under.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.gateway.asynchronous.conftest import CONFIG, KEYS, Gateway, gateway, wait_for_file
from tests.gateway.asynchronous.test_s3 import wait_object
from tests.gateway.asynchronous.webhook import Webhook, webhook
from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.s3server import moto_s3
from tests.support import PYTHON, wait_until

pytestmark = pytest.mark.slow

WAIT = {"Delay": 0.1, "MaxAttempts": 600}


@dataclass
class World:
    gw: Gateway
    sm: Any
    s3: Any
    hook: Webhook
    folder: Path


def control(url: str) -> Any:
    return boto3.client("sagemaker", endpoint_url=url, config=CONFIG, **KEYS)


def create(sm: Any, name: str, async_config: dict[str, Any] | None = None, **env: Any) -> None:
    """A contract-server model, a config (with ``async_config``) and the endpoint, InService."""
    command = f"{PYTHON} {CONTRACT_SERVER}"
    environment = {"TANDEM_COMMAND": command, **{k: str(v) for k, v in env.items()}}
    sm.create_model(ModelName=name, PrimaryContainer={"Environment": environment})
    extra = {"AsyncInferenceConfig": async_config} if async_config is not None else {}
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}
        ],
        **extra,
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("control")
    with (
        moto_s3(folder, "inputs", "answers") as (url, s3),
        webhook() as hook,
        gateway(folder, [], s3=url) as gw,
    ):
        yield World(gw, control(gw.url), s3, hook, folder)


def s3_config(hook: Webhook) -> dict[str, Any]:
    return {
        "OutputConfig": {
            "S3OutputPath": "s3://answers/out",
            "S3FailurePath": "s3://answers/failed",
            "NotificationConfig": {
                "SuccessTopic": f"{hook.url}/success",
                "ErrorTopic": f"{hook.url}/error",
            },
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
    }


def test_an_s3_output_config_is_described_as_given_and_served(world: World) -> None:
    config = s3_config(world.hook)
    create(world.sm, "to-s3", config)
    described = world.sm.describe_endpoint_config(EndpointConfigName="to-s3")
    assert described["AsyncInferenceConfig"] == config
    assert world.sm.describe_endpoint(EndpointName="to-s3")["AsyncInferenceConfig"] == config

    world.s3.put_object(Bucket="inputs", Key="one.csv", Body=b"7,8,9\n")
    answer = world.gw.runtime.invoke_endpoint_async(
        EndpointName="to-s3", InputLocation="s3://inputs/one.csv", InferenceId="cp-1"
    )
    assert answer["OutputLocation"] == "s3://answers/out/cp-1.out"
    assert answer["FailureLocation"] == "s3://answers/failed/cp-1-error.out"
    assert wait_object(world.s3, "answers", "out/cp-1.out") == b"7,8,9\n"
    # NotificationConfig's SuccessTopic is the webhook that hears of it.
    message = world.hook.wait("/success", "cp-1")
    assert message["responseParameters"]["outputLocation"] == "s3://answers/out/cp-1.out"
    assert world.hook.received("/error") == []


def test_a_folder_output_gets_an_s3_input_answered(world: World) -> None:
    out = world.folder / "answers"
    config = {"OutputConfig": {"S3OutputPath": str(out)}}
    create(world.sm, "to-folder", config, CONTRACT_MODE="upper")
    assert world.sm.describe_endpoint_config(EndpointConfigName="to-folder")[
        "AsyncInferenceConfig"
    ] == {"OutputConfig": {"S3OutputPath": str(out.resolve())}}
    world.s3.put_object(Bucket="inputs", Key="text.txt", Body=b"shout")
    answer = world.gw.runtime.invoke_endpoint_async(
        EndpointName="to-folder", InputLocation="s3://inputs/text.txt", InferenceId="cp-2"
    )
    assert answer["OutputLocation"] == str(out.resolve() / "cp-2.out")
    assert wait_for_file(Path(answer["OutputLocation"])) == b"SHOUT"


def test_max_concurrent_invocations_per_instance_caps_what_runs(world: World) -> None:
    """Six slow requests on a cap of 2: the container never runs more than 2 at once, and 2 at
    some point; a request whose call is over frees its slot while its end is recorded, so at
    most as many again are ``Running`` in the queue."""
    config = {
        "OutputConfig": {"S3OutputPath": str(world.folder / "capped")},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
    }
    busiest = world.folder / "capped-busiest"
    create(world.sm, "capped", config, CONTRACT_SLEEP=0.5, CONTRACT_BUSIEST=busiest)
    world.s3.put_object(Bucket="inputs", Key="c.csv", Body=b"1\n")
    ids = [f"cap-{i}" for i in range(6)]
    for inference_id in ids:
        world.gw.runtime.invoke_endpoint_async(
            EndpointName="capped", InputLocation="s3://inputs/c.csv", InferenceId=inference_id
        )
    seen: list[int] = []  # how many ran at once, at each look

    def finished() -> bool:
        rows = [r for r in world.gw.rows() if r[1] in ids]
        seen.append(sum(1 for r in rows if r[2] == "Running"))
        return all(r[2] == "Completed" for r in rows)

    wait_until(finished, timeout=90, what="the capped requests to finish")
    assert busiest.read_text() == "2"
    assert 2 <= max(seen) <= 4, seen
    for inference_id in ids:
        assert (world.folder / "capped" / f"{inference_id}.out").read_bytes() == b"1\n"


def test_a_failure_goes_to_the_s3_failure_path(world: World) -> None:
    create(world.sm, "broken-s3", s3_config(world.hook), CONTRACT_STATUS=500)
    world.s3.put_object(Bucket="inputs", Key="two.csv", Body=b"1\n")
    world.gw.runtime.invoke_endpoint_async(
        EndpointName="broken-s3", InputLocation="s3://inputs/two.csv", InferenceId="cp-3"
    )
    document = json.loads(wait_object(world.s3, "answers", "failed/cp-3-error.out"))
    assert document["ErrorCode"] == "ModelError" and document["InferenceId"] == "cp-3"
    assert world.hook.wait("/error", "cp-3")["invocationStatus"] == "Failed"


def test_an_endpoint_without_async_config_refuses_async_invocations(world: World) -> None:
    create(world.sm, "realtime")
    world.s3.put_object(Bucket="inputs", Key="rt.csv", Body=b"1\n")
    with pytest.raises(ClientError) as caught:
        world.gw.runtime.invoke_endpoint_async(
            EndpointName="realtime", InputLocation="s3://inputs/rt.csv"
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "AsyncInferenceConfig" in caught.value.response["Error"]["Message"]
    assert "AsyncInferenceConfig" not in world.sm.describe_endpoint_config(
        EndpointConfigName="realtime"
    )
    # Its real-time invocations are served as usual.
    answer = world.gw.runtime.invoke_endpoint(EndpointName="realtime", Body=b"rt")
    assert answer["Body"].read() == b"rt"


def test_an_output_path_outside_the_roots_is_refused_naming_the_field(world: World) -> None:
    world.sm.create_model(
        ModelName="outside",
        PrimaryContainer={"Environment": {"TANDEM_COMMAND": f"{PYTHON} {CONTRACT_SERVER}"}},
    )
    with pytest.raises(ClientError) as caught:
        world.sm.create_endpoint_config(
            EndpointConfigName="outside",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "outside"}],
            AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "/etc/tandem-answers"}},
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "AsyncInferenceConfig.S3OutputPath" in error["Message"]
    assert "TANDEM_MODEL_ROOTS" in error["Message"]
