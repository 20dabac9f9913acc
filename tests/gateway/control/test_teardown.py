"""Teardown as the SageMaker SDKs make it: a config and a model may be deleted while an endpoint
uses them (it runs its own copy), in any order, through boto3 against the real control plane."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.gateway.control.conftest import SKLEARN_IMAGE, World


def test_sdk_v2_order_endpoint_then_config_then_model_while_deleting(world: World) -> None:
    """``predictor.delete_endpoint()`` then ``delete_model()``; SDK v3 deletes the config while
    the endpoint is still ``Deleting``."""
    world.model()
    world.config()
    world.endpoint()
    world.reconciler.hold = True
    world.sm.delete_endpoint(EndpointName="e")
    world.sm.delete_endpoint_config(EndpointConfigName="c")
    world.sm.delete_model(ModelName="m")
    deleting = world.sm.describe_endpoint(EndpointName="e")
    assert deleting["EndpointStatus"] == "Deleting" and deleting["EndpointConfigName"] == "c"
    world.reconciler.settle("e")
    assert world.sm.list_endpoints()["Endpoints"] == []
    assert world.sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert world.sm.list_models()["Models"] == []
    assert world.store.check() == []


def test_an_in_service_endpoint_outlives_its_config_and_model(world: World) -> None:
    world.model()
    world.config(model="M", InitialInstanceCount=2)  # names are unique regardless of case
    world.endpoint()
    before = world.sm.describe_endpoint(EndpointName="e")
    world.sm.delete_endpoint_config(EndpointConfigName="c")
    world.sm.delete_model(ModelName="m")
    after = world.sm.describe_endpoint(EndpointName="e")
    assert after["EndpointStatus"] == "InService" and after["EndpointConfigName"] == "c"
    assert after["ProductionVariants"] == before["ProductionVariants"]
    assert after["ProductionVariants"][0]["DeployedImages"] == [{"SpecifiedImage": SKLEARN_IMAGE}]
    # Its instance counts still change: it reads its own copy of the config.
    world.sm.update_endpoint_weights_and_capacities(
        EndpointName="e",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 1}],
    )
    resized = world.sm.describe_endpoint(EndpointName="e")
    assert resized["ProductionVariants"][0]["DesiredInstanceCount"] == 1


def test_an_update_to_a_deleted_config_is_refused_as_sagemaker_refuses_it(world: World) -> None:
    world.model()
    world.config("blue")
    world.config("green")
    world.endpoint(config="blue")
    world.sm.delete_endpoint_config(EndpointConfigName="green")
    world.sm.delete_endpoint_config(EndpointConfigName="blue")
    before = world.snapshot()
    for config in ("green", "blue"):  # the one it serves is gone from the table too
        with pytest.raises(ClientError) as info:
            world.sm.update_endpoint(EndpointName="e", EndpointConfigName=config)
        error = info.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert error["Message"] == f'Could not find endpoint configuration "{config}".'
    assert world.snapshot() == before


def test_a_config_deleted_during_an_update_is_still_rolled_out(world: World) -> None:
    world.model()
    world.config("blue")
    world.model("m2")
    world.config("green", model="m2", InitialInstanceCount=2)
    world.endpoint(config="blue")
    world.reconciler.hold = True
    world.sm.update_endpoint(EndpointName="e", EndpointConfigName="green")
    world.sm.delete_endpoint_config(EndpointConfigName="green")
    world.sm.delete_model(ModelName="m2")
    during = world.sm.describe_endpoint(EndpointName="e")
    pending = during["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "green"
    assert pending["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    world.reconciler.settle("e")
    done = world.sm.describe_endpoint(EndpointName="e")
    assert done["EndpointConfigName"] == "green" and "PendingDeploymentSummary" not in done
    assert done["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    plan = world.plane.plan("e")
    assert plan is not None and plan.instance_count == 2
