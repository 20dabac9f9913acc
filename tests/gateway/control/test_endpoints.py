"""Endpoints through boto3: create, describe, update (and its rollback), delete, and the waiters."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, WaiterError

from gateway.state import EndpointStatus
from tests.gateway.control.conftest import FAST, SKLEARN_IMAGE, World, wait_in_thread
from tests.support import wait_until


def test_a_waiter_driven_create(world: World) -> None:
    world.reconciler.hold = True
    world.model()
    world.config()
    arn = world.endpoint("Churn")
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/churn"
    assert world.reconciler.kicked == ["Churn"]
    thread, outcome = wait_in_thread(world, "endpoint_in_service", EndpointName="Churn")
    creating = world.sm.describe_endpoint(EndpointName="churn")
    assert creating["EndpointStatus"] == "Creating"
    assert creating["ProductionVariants"][0]["CurrentInstanceCount"] == 0
    world.reconciler.settle("Churn")
    thread.join(timeout=30)
    assert outcome == [None]
    got = world.sm.describe_endpoint(EndpointName="Churn")
    assert got["EndpointStatus"] == "InService" and got["EndpointArn"] == arn
    assert got["EndpointConfigName"] == "c" and "FailureReason" not in got
    assert got["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "DeployedImages": [{"SpecifiedImage": SKLEARN_IMAGE}],
            "CurrentWeight": 1.0,
            "DesiredWeight": 1.0,
            "CurrentInstanceCount": 1,
            "DesiredInstanceCount": 1,
        }
    ]
    assert got["LastModifiedTime"] >= got["CreationTime"]


def test_the_in_service_waiter_fails_on_a_failed_endpoint(world: World) -> None:
    world.reconciler.hold = True
    world.model()
    world.config()
    world.endpoint()
    reason = 'Container container-1 exited with code 1; last lines: "ImportError: sklearn"'
    world.store.set_endpoint_status("e", EndpointStatus.FAILED, reason)
    with pytest.raises(WaiterError, match="Failed"):
        world.sm.get_waiter("endpoint_in_service").wait(EndpointName="e", WaiterConfig=FAST)
    assert world.sm.describe_endpoint(EndpointName="e")["FailureReason"] == reason


def test_an_update_serves_the_old_config_until_the_new_one_is_up(world: World) -> None:
    world.model()
    world.config("blue")
    world.endpoint(config="blue")
    world.model("m2")
    world.config("green", model="m2", InitialInstanceCount=2)
    world.reconciler.hold = True
    world.sm.update_endpoint(EndpointName="e", EndpointConfigName="green")
    during = world.sm.describe_endpoint(EndpointName="e")
    assert during["EndpointStatus"] == "Updating"
    assert during["EndpointConfigName"] == "blue"
    assert during["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    pending = during["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "green"
    assert pending["StartTime"] >= during["CreationTime"]
    (variant,) = pending["ProductionVariants"]
    assert variant["DesiredInstanceCount"] == 2 and variant["CurrentInstanceCount"] == 0
    assert variant["DeployedImages"] == [{"SpecifiedImage": SKLEARN_IMAGE}]
    assert [s["Status"] for s in variant["VariantStatus"]] == ["Creating"]
    assert "ShadowProductionVariants" not in pending
    with pytest.raises(ClientError) as busy:
        world.sm.update_endpoint(EndpointName="e", EndpointConfigName="blue")
    assert busy.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in busy.value.response["Error"]["Message"]
    thread, outcome = wait_in_thread(world, "endpoint_in_service", EndpointName="e")
    world.reconciler.settle("e")
    thread.join(timeout=30)
    assert outcome == [None]
    after = world.sm.describe_endpoint(EndpointName="e")
    assert after["EndpointConfigName"] == "green" and "PendingDeploymentSummary" not in after
    # As on SageMaker, either config may go: the endpoint runs its own copy of green.
    world.sm.delete_endpoint_config(EndpointConfigName="blue")
    world.sm.delete_endpoint_config(EndpointConfigName="green")
    assert (
        world.sm.describe_endpoint(EndpointName="e")["ProductionVariants"][0][
            "DesiredInstanceCount"
        ]
        == 2
    )


def test_a_failed_update_rolls_back_with_its_reason(world: World) -> None:
    world.model()
    world.config("blue")
    world.endpoint(config="blue")
    world.config("green")
    world.reconciler.fail_update = "container-1 did not answer /ping within 120 s"
    world.sm.update_endpoint(EndpointName="e", EndpointConfigName="green")
    got = world.sm.describe_endpoint(EndpointName="e")
    assert got["EndpointStatus"] == "InService" and got["EndpointConfigName"] == "blue"
    assert got["FailureReason"] == "container-1 did not answer /ping within 120 s"
    world.sm.update_endpoint(EndpointName="e", EndpointConfigName="green")  # clears the reason
    again = world.sm.describe_endpoint(EndpointName="e")
    assert again["EndpointConfigName"] == "green" and "FailureReason" not in again


def test_a_failed_endpoint_cannot_be_updated(world: World) -> None:
    world.reconciler.hold = True
    world.model()
    world.config()
    arn = world.endpoint()
    world.store.set_endpoint_status("e", EndpointStatus.FAILED, "boom")
    before = world.snapshot()
    with pytest.raises(ClientError) as err:
        world.sm.update_endpoint(EndpointName="e", EndpointConfigName="c")
    assert err.value.response["Error"]["Message"] == (
        f'Cannot update failed endpoint "{arn}"; delete it and create it again.'
    )
    assert world.snapshot() == before


def test_delete_drains_through_deleting_and_the_waiter_sees_it_gone(world: World) -> None:
    world.model()
    world.config()
    world.endpoint()
    world.reconciler.hold = True
    world.sm.delete_endpoint(EndpointName="e")
    assert world.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Deleting"
    world.sm.delete_endpoint(EndpointName="e")  # asking again is fine
    thread, outcome = wait_in_thread(world, "endpoint_deleted", EndpointName="e")
    world.reconciler.settle("e")
    thread.join(timeout=30)
    assert outcome == [None]
    assert world.sm.list_endpoints()["Endpoints"] == []
    # Its config and model are free: an endpoint being deleted held them until it was gone.
    world.sm.delete_endpoint_config(EndpointConfigName="c")
    world.sm.delete_model(ModelName="m")


def test_an_endpoint_stuck_creating_can_be_deleted(world: World) -> None:
    world.reconciler.hold = True
    world.model()
    world.config()
    world.endpoint()
    world.sm.delete_endpoint(EndpointName="e")
    world.reconciler.settle("e")
    wait_until(lambda: world.store.get_endpoint("e") is None, timeout=10, what="endpoint gone")


def test_a_hook_that_fails_does_not_undo_the_call(world: World) -> None:
    def broken(endpoint: str) -> None:
        raise RuntimeError("reconciler down")

    world.model()
    world.config()
    world.reconciler.kick = broken  # type: ignore[method-assign]
    world.endpoint()
    assert world.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Creating"
