"""The inference component operations through the real boto3 client: what they write, list and
describe, and bad input answered with SageMaker's error codes with nothing half-made.

The running side is stood in for by a runner that writes the states the real one reports (the
real one is under test in tests/gateway/lifecycle/test_components.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.state import ComponentStatus, StateStore
from tests.gateway.control.conftest import ROLE, World

#: One instance offers 2 cores and 2048 MiB; the host runs at most 4 containers.
CAPACITY = (2.0, 2048)
BUDGET = 4


@dataclass
class Runner:
    store: StateStore
    kicked: list[str] = field(default_factory=list)

    def kick(self, component: str) -> None:
        self.kicked.append(component)
        record = self.store.get_component(component)
        if record is None:
            return
        if record.status is ComponentStatus.CREATING:
            self.store.set_component_status(component, ComponentStatus.IN_SERVICE)
        elif record.status is ComponentStatus.UPDATING:
            self.store.finish_component_update(component)
        elif record.status is ComponentStatus.DELETING:
            self.store.remove_component(component)

    def view(self, component: str) -> dict[str, Any] | None:
        record = self.store.get_component(component)
        return None if record is None else {"current": record.copies}


@pytest.fixture
def ready(world: World) -> World:
    """A model, a config for components (no model) and its endpoint, in service."""
    world.plane.context = dataclasses.replace(
        world.plane.context, budget=BUDGET, instance_capacity=CAPACITY
    )
    world.plane.components = Runner(world.store)
    world.model()
    world.sm.create_endpoint_config(
        EndpointConfigName="ic",
        ExecutionRoleArn=ROLE,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
                "ManagedInstanceScaling": {
                    "Status": "ENABLED",
                    "MinInstanceCount": 1,
                    "MaxInstanceCount": 2,
                },
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
            }
        ],
    )
    world.endpoint("ep", "ic")
    return world


def component(world: World, name: str, copies: int = 1, **spec: Any) -> Any:
    specification = {
        "ModelName": "m",
        "ComputeResourceRequirements": {
            "NumberOfCpuCoresRequired": 1,
            "MinMemoryRequiredInMb": 512,
        },
        **spec,
    }
    return world.sm.create_inference_component(
        InferenceComponentName=name,
        EndpointName="ep",
        VariantName="AllTraffic",
        Specification=specification,
        RuntimeConfig={"CopyCount": copies},
    )


def refused(call: Any, code: str, *words: str) -> str:
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["Error"]["Code"] == code, err.value.response
    message = str(err.value.response["Error"]["Message"])
    for word in words:
        assert word in message, message
    return message


def test_create_describe_list_update_delete(ready: World) -> None:
    arn = component(ready, "a", copies=2)["InferenceComponentArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:inference-component/a"
    described = ready.sm.describe_inference_component(InferenceComponentName="a")
    assert described["InferenceComponentStatus"] == "InService"
    assert described["EndpointName"] == "ep"
    assert described["VariantName"] == "AllTraffic"
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
    assert described["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1.0,
        "MinMemoryRequiredInMb": 512,
    }
    endpoint = ready.sm.describe_endpoint(EndpointName="ep")
    (variant,) = endpoint["ProductionVariants"]
    assert variant["ManagedInstanceScaling"]["MaxInstanceCount"] == 2
    config = ready.sm.describe_endpoint_config(EndpointConfigName="ic")
    assert config["ExecutionRoleArn"] == ROLE and "ModelName" not in config["ProductionVariants"][0]

    ready.sm.update_inference_component_runtime_config(
        InferenceComponentName="a", DesiredRuntimeConfig={"CopyCount": 0}
    )
    described = ready.sm.describe_inference_component(InferenceComponentName="a")
    assert described["RuntimeConfig"]["DesiredCopyCount"] == 0
    ready.sm.update_inference_component(
        InferenceComponentName="a",
        Specification={
            "Container": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                          "sagemaker-scikit-learn:1.2-1-cpu-py3",
                          "ArtifactUrl": str(ready.model_dir)},
            "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 256},
        },
        RuntimeConfig={"CopyCount": 1},
    )  # fmt: skip
    described = ready.sm.describe_inference_component(InferenceComponentName="a")
    assert described["Specification"]["Container"]["ArtifactUrl"] == str(ready.model_dir)
    assert described["RuntimeConfig"]["DesiredCopyCount"] == 1

    ready.sm.delete_inference_component(InferenceComponentName="a")
    assert ready.sm.list_inference_components()["InferenceComponents"] == []


def test_list_filters_and_pages(ready: World) -> None:
    for name in ("c1", "c2", "c3"):
        component(ready, name, copies=1, ComputeResourceRequirements={"MinMemoryRequiredInMb": 128})
    first = ready.sm.list_inference_components(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [c["InferenceComponentName"] for c in first["InferenceComponents"]] == ["c1", "c2"]
    rest = ready.sm.list_inference_components(
        MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"]
    )
    assert [c["InferenceComponentName"] for c in rest["InferenceComponents"]] == ["c3"]
    assert "NextToken" not in rest
    assert (
        ready.sm.list_inference_components(EndpointNameEquals="other")["InferenceComponents"] == []
    )
    found = ready.sm.list_inference_components(NameContains="2", StatusEquals="InService")
    assert [c["InferenceComponentName"] for c in found["InferenceComponents"]] == ["c2"]


def test_bad_input_is_refused_with_nothing_written(ready: World) -> None:
    component(ready, "a")
    before = ready.snapshot()
    # A reservation no instance can hold.
    refused(
        lambda: component(
            ready, "big", ComputeResourceRequirements={"MinMemoryRequiredInMb": 4096}
        ),
        "ValidationException",
        "4096 MiB",
        "2048 MiB",
    )
    # More copies than the host budget: SageMaker's ResourceLimitExceeded.
    refused(lambda: component(ready, "many", copies=5), "ResourceLimitExceeded", "TANDEM_MAX_")
    refused(
        lambda: ready.sm.update_inference_component_runtime_config(
            InferenceComponentName="a", DesiredRuntimeConfig={"CopyCount": 9}
        ),
        "ResourceLimitExceeded",
        "9 copies",
    )
    assert ready.snapshot() == before
    # An endpoint whose config names a model is not one for components.
    ready.config("plain", "m")
    ready.endpoint("plain-ep", "plain")
    refused(
        lambda: ready.sm.create_inference_component(
            InferenceComponentName="x",
            EndpointName="plain-ep",
            Specification={
                "ModelName": "m",
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 128},
            },
            RuntimeConfig={"CopyCount": 1},
        ),
        "ValidationException",
        "not configured for inference components",
    )
    before = ready.snapshot()
    refused(
        lambda: component(ready, "adapter", BaseInferenceComponentName="nope"),
        "ValidationException",
        'Could not find inference component "nope"',
    )
    refused(lambda: component(ready, "m2", ModelName="missing"), "ValidationException", "missing")
    refused(lambda: component(ready, "a"), "ValidationException", "already existing")
    refused(
        lambda: ready.sm.create_inference_component(
            InferenceComponentName="z",
            EndpointName="nope",
            Specification={
                "ModelName": "m",
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 128},
            },
        ),
        "ValidationException",
        'endpoint "nope"',
    )
    refused(
        lambda: ready.sm.describe_inference_component(InferenceComponentName="nope"),
        "ValidationException",
        'Could not find inference component "nope"',
    )
    refused(
        lambda: ready.sm.delete_endpoint(EndpointName="ep"),
        "ValidationException",
        "delete them first",
    )
    assert ready.snapshot() == before
