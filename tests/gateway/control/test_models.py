"""CreateModel, DescribeModel, ListModels, DeleteModel, and the same for endpoint configs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.gateway.control.conftest import ROLE, SKLEARN_IMAGE, World


def test_a_model_is_described_as_it_was_created(world: World) -> None:
    arn = world.model("Churn-Model", Environment={"SAGEMAKER_PROGRAM": "inference.py"})
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:model/churn-model"
    got = world.sm.describe_model(ModelName="churn-model")  # names match whatever their case
    assert got["ModelName"] == "Churn-Model" and got["ModelArn"] == arn
    assert got["PrimaryContainer"] == {
        "Image": SKLEARN_IMAGE,
        "ModelDataUrl": str(world.model_dir),
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    assert got["ExecutionRoleArn"] == ROLE and got["EnableNetworkIsolation"] is False
    assert got["CreationTime"].year >= 2024


def test_a_multi_container_model_keeps_its_execution_mode(world: World) -> None:
    world.sm.create_model(
        ModelName="zoo",
        Containers=[
            {"ContainerHostname": "a", "Image": "sklearn", "ModelDataUrl": str(world.model_dir)},
            {
                "ContainerHostname": "b",
                "Image": "my-registry.example/server:1.0",
                "Mode": "MultiModel",
                "ModelDataUrl": "s3://bucket/houses/",
                "MultiModelConfig": {"ModelCacheSetting": "Disabled"},
            },
        ],
        InferenceExecutionConfig={"Mode": "Direct"},
        VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},  # accepted, ignored
    )
    got = world.sm.describe_model(ModelName="zoo")
    assert got["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert [c["ContainerHostname"] for c in got["Containers"]] == ["a", "b"]
    assert got["Containers"][1]["Mode"] == "MultiModel"


def test_a_command_container_needs_no_image(world: World) -> None:
    world.sm.create_model(
        ModelName="cmd",
        PrimaryContainer={"Environment": {"TANDEM_COMMAND": "python server.py --port 8080"}},
    )
    spec = world.plane.store.get_model("cmd")
    assert spec is not None and "Image" not in spec.request["PrimaryContainer"]


def test_a_relative_model_path_is_stored_absolute(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.model_dir.parent)
    world.sm.create_model(
        ModelName="rel", PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "m"}
    )
    got = world.sm.describe_model(ModelName="rel")
    assert got["PrimaryContainer"]["ModelDataUrl"] == str(world.model_dir.resolve())


def test_delete_model(world: World) -> None:
    world.model("gone")
    world.sm.delete_model(ModelName="gone")
    with pytest.raises(ClientError) as err:
        world.sm.describe_model(ModelName="gone")
    assert err.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": 'Could not find model "gone".',
    }


def test_an_endpoint_config_is_described_as_it_was_created(world: World) -> None:
    world.model()
    arn = world.config("Blue", InstanceType="ml.m5.large", InitialInstanceCount=3)
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/blue"
    got = world.sm.describe_endpoint_config(EndpointConfigName="blue")
    assert got["EndpointConfigName"] == "Blue" and got["EndpointConfigArn"] == arn
    assert got["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InitialInstanceCount": 3,
            "InstanceType": "ml.m5.large",
        }
    ]


def test_delete_endpoint_config(world: World) -> None:
    world.model()
    world.config("gone")
    world.sm.delete_endpoint_config(EndpointConfigName="gone")
    with pytest.raises(ClientError) as err:
        world.sm.describe_endpoint_config(EndpointConfigName="gone")
    assert err.value.response["Error"]["Message"] == (
        'Could not find endpoint configuration "gone".'
    )


def test_a_config_may_outlive_its_model_but_no_endpoint_starts_on_it(world: World) -> None:
    world.model()
    world.config()
    world.sm.delete_model(ModelName="m")  # no endpoint uses it yet: SageMaker allows this too
    with pytest.raises(ClientError) as err:
        world.endpoint()
    assert err.value.response["Error"]["Message"] == 'Could not find model "m".'
    assert world.store.get_endpoint("e") is None


def test_racing_creates_of_one_name_leave_exactly_one(world: World) -> None:
    def create(i: int) -> str:
        try:
            world.sm.create_model(
                ModelName="race",
                PrimaryContainer={"Image": "sklearn", "Environment": {"N": str(i)}},
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Message"])
        return "created"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert outcomes.count("created") == 1
    assert all("Cannot create already existing model" in o for o in outcomes if o != "created")
    assert [m["ModelName"] for m in world.sm.list_models()["Models"]] == ["race"]
