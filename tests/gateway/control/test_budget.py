"""The host budget at the API: calls past it are SageMaker's ResourceLimitExceeded, naming the
limit, and change nothing (no row written, no reconciler kicked)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.state import EndpointStatus
from tests.gateway.control.conftest import World

LIMIT = 4


@pytest.fixture
def budgeted(world: World) -> World:
    world.plane.context = dataclasses.replace(world.plane.context, budget=LIMIT)
    world.model()
    return world


def refused(world: World, call: Any) -> str:
    """The message of the ResourceLimitExceeded ``call`` gets; the state is left as it was."""
    before, kicked = world.snapshot(), list(world.reconciler.kicked)
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded", error
    assert isinstance(info.value, world.sm.exceptions.ResourceLimitExceeded)
    assert world.snapshot() == before and world.reconciler.kicked == kicked
    message: str = error["Message"]
    assert "TANDEM_MAX_CONTAINERS" in message and f"is {LIMIT} containers" in message
    return message


def test_ten_thousand_instances_are_refused_before_anything_is_written(budgeted: World) -> None:
    message = refused(budgeted, lambda: budgeted.config("huge", InitialInstanceCount=10000))
    assert "request delta of 10000 containers" in message
    assert (
        "variant AllTraffic (productionVariants.1.member.initialInstanceCount): "
        "10000 instance(s) x 1 container(s)"
    ) in message
    assert 'endpoint configuration "huge"' in message


def test_endpoints_together_stay_within_the_budget(budgeted: World) -> None:
    budgeted.config("three", InitialInstanceCount=3)
    budgeted.config("two", InitialInstanceCount=2)
    budgeted.config("one")
    budgeted.endpoint("a", config="three")
    message = refused(budgeted, lambda: budgeted.endpoint("b", config="two"))
    assert "current utilization of 3 containers and a request delta of 2" in message
    assert 'endpoint "b"' in message
    budgeted.endpoint("b", config="one")  # what fits is taken
    # A failed endpoint runs nothing; a deleted one gives its room back.
    budgeted.store.set_endpoint_status("a", EndpointStatus.FAILED, "no ping")
    budgeted.endpoint("c", config="two")
    refused(budgeted, lambda: budgeted.endpoint("d", config="two"))
    budgeted.sm.delete_endpoint(EndpointName="a")
    budgeted.sm.delete_endpoint(EndpointName="c")
    budgeted.endpoint("d", config="three")


def test_an_update_needs_room_for_both_fleets(budgeted: World) -> None:
    """Blue/green starts the new config beside the old: both count until the update ends."""
    budgeted.config("two", InitialInstanceCount=2)
    budgeted.config("three", InitialInstanceCount=3)
    budgeted.endpoint("e", config="two")
    message = refused(
        budgeted,
        lambda: budgeted.sm.update_endpoint(EndpointName="e", EndpointConfigName="three"),
    )
    assert "request delta of 5 containers" in message
    budgeted.sm.update_endpoint(EndpointName="e", EndpointConfigName="two")
    assert budgeted.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "InService"


def test_weights_and_capacities_stay_within_the_budget(budgeted: World) -> None:
    budgeted.config()
    budgeted.endpoint()

    def resize(count: int) -> Any:
        return budgeted.sm.update_endpoint_weights_and_capacities(
            EndpointName="e",
            DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": count}
            ],
        )

    message = refused(budgeted, lambda: resize(LIMIT + 1))
    assert f"variant AllTraffic (desiredInstanceCount): {LIMIT + 1} instance(s)" in message
    resize(LIMIT)
    got = budgeted.sm.describe_endpoint(EndpointName="e")
    assert got["ProductionVariants"][0]["DesiredInstanceCount"] == LIMIT


def test_containers_count_not_instances(budgeted: World) -> None:
    """A variant's instance runs each of its model's containers: two each here."""
    pair = [
        {"Image": "sklearn", "ModelDataUrl": str(budgeted.model_dir), "ContainerHostname": h}
        for h in ("a", "b")
    ]
    budgeted.sm.create_model(ModelName="pair", Containers=pair)
    message = refused(
        budgeted, lambda: budgeted.config("pairs", model="pair", InitialInstanceCount=3)
    )
    assert "3 instance(s) x 2 container(s)" in message
    budgeted.config("pairs", model="pair", InitialInstanceCount=2)
