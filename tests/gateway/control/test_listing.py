"""List*: filters, sort orders, MaxResults and NextToken, through boto3 and its paginators."""

from __future__ import annotations

from typing import Any

from gateway.state import EndpointStatus
from tests.gateway.control.conftest import World


def names(items: list[dict[str, Any]], key: str) -> list[str]:
    return [item[key] for item in items]


def test_list_models_pages_in_every_order(world: World) -> None:
    for i in range(12):
        world.model(f"model-{i:02d}")
    everything = [f"model-{i:02d}" for i in range(12)]
    default = world.sm.list_models()
    assert len(default["Models"]) == 10 and "NextToken" in default  # SageMaker's page: 10
    assert names(default["Models"], "ModelName") == everything[::-1][:10]  # newest first
    rest = world.sm.list_models(NextToken=default["NextToken"])
    assert names(rest["Models"], "ModelName") == everything[::-1][10:] and "NextToken" not in rest
    by_name = world.sm.get_paginator("list_models").paginate(
        SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 5}
    )
    pages = [names(p["Models"], "ModelName") for p in by_name]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [name for p in pages for name in p] == everything
    first = world.sm.list_models()["Models"][0]
    assert set(first) == {"ModelName", "ModelArn", "CreationTime"}


def test_list_models_filters_by_name_and_creation_time(world: World) -> None:
    for name in ("churn-a", "houses", "churn-b"):
        world.model(name)
    assert names(world.sm.list_models(NameContains="churn")["Models"], "ModelName") == [
        "churn-b",
        "churn-a",
    ]
    houses = world.sm.describe_model(ModelName="houses")["CreationTime"]
    after = world.sm.list_models(CreationTimeAfter=houses, SortOrder="Ascending")
    assert names(after["Models"], "ModelName") == ["churn-b"]
    before = world.sm.list_models(CreationTimeBefore=houses)
    assert names(before["Models"], "ModelName") == ["churn-a"]


def test_list_endpoint_configs(world: World) -> None:
    world.model()
    for name in ("blue", "green", "red"):
        world.config(name)
    got = world.sm.list_endpoint_configs(SortBy="Name", SortOrder="Descending", MaxResults=2)
    assert names(got["EndpointConfigs"], "EndpointConfigName") == ["red", "green"]
    more = world.sm.list_endpoint_configs(
        SortBy="Name", SortOrder="Descending", NextToken=got["NextToken"]
    )
    assert names(more["EndpointConfigs"], "EndpointConfigName") == ["blue"]
    assert names(
        world.sm.list_endpoint_configs(NameContains="ee")["EndpointConfigs"], "EndpointConfigName"
    ) == ["green"]


def test_list_endpoints_filters_by_status_and_times(world: World) -> None:
    world.model()
    world.config()
    world.endpoint("a")
    world.reconciler.hold = True
    world.endpoint("b")
    world.endpoint("c")
    world.store.set_endpoint_status("c", EndpointStatus.FAILED, "no")
    listed = world.sm.list_endpoints()["Endpoints"]
    assert names(listed, "EndpointName") == ["c", "b", "a"]
    assert set(listed[0]) == {
        "EndpointName",
        "EndpointArn",
        "CreationTime",
        "LastModifiedTime",
        "EndpointStatus",
    }
    for status, expected in (("InService", ["a"]), ("Creating", ["b"]), ("Failed", ["c"])):
        got = world.sm.list_endpoints(StatusEquals=status)["Endpoints"]
        assert names(got, "EndpointName") == expected
    by_status = world.sm.list_endpoints(SortBy="Status", SortOrder="Ascending")["Endpoints"]
    assert names(by_status, "EndpointStatus") == ["Creating", "Failed", "InService"]
    b = world.sm.describe_endpoint(EndpointName="b")
    modified = world.sm.list_endpoints(LastModifiedTimeAfter=b["LastModifiedTime"])
    assert names(modified["Endpoints"], "EndpointName") == ["c"]
    earlier = world.sm.list_endpoints(LastModifiedTimeBefore=b["LastModifiedTime"])
    assert names(earlier["Endpoints"], "EndpointName") == ["a"]
    pages = world.sm.get_paginator("list_endpoints").paginate(
        SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 1}
    )
    assert [names(p["Endpoints"], "EndpointName") for p in pages] == [["a"], ["b"], ["c"]]
