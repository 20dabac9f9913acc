"""Bad input gets Application Auto Scaling's error codes, naming the parameter; nothing stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.autoscaling.conftest import LOAD, TARGET, Gateway, gateway, spec

TT = "TargetTrackingScaling"
PER_INSTANCE = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def rows(gw: Gateway) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(gw.state / "control.db")
    try:
        return conn.execute("SELECT kind, name, body FROM autoscaling_objects").fetchall()
    finally:
        conn.close()


def refused(gw: Gateway, call: Callable[[], Any], code: str, *words: str) -> None:
    before = rows(gw)
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    for word in words:
        assert word in error["Message"], error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert rows(gw) == before


def test_bad_targets_are_refused_and_nothing_is_stored(gw: Gateway) -> None:
    def register(**changes: Any) -> Callable[[], Any]:
        params = {**TARGET, "MinCapacity": 1, "MaxCapacity": 2, **changes}
        return lambda: gw.aas.register_scalable_target(**params)

    nope, other = "endpoint/nope/variant/AllTraffic", "endpoint/ep/variant/Other"
    refused(gw, register(ResourceId=nope), "ValidationException", "ResourceId", "no endpoint")
    refused(gw, register(ResourceId=other), "ValidationException", "no variant 'Other'")
    refused(gw, register(ResourceId="ep"), "ValidationException", "ResourceId")
    refused(gw, register(ServiceNamespace="ecs"), "ValidationException", "ServiceNamespace")
    dimension = "ecs:service:DesiredCount"
    refused(gw, register(ScalableDimension=dimension), "ValidationException", "ScalableDimension")
    refused(gw, register(MinCapacity=3), "ValidationException", "MinCapacity")
    refused(gw, register(MaxCapacity=65), "ValidationException", "MaxCapacity 65 is over")
    lone = {**TARGET, "MinCapacity": 1}
    refused(gw, lambda: gw.aas.register_scalable_target(**lone), "ValidationException", "Max")
    unregistered = "No scalable target registered"
    config = {"TargetValue": 10.0, "PredefinedMetricSpecification": PER_INSTANCE}
    refused(gw, put_policy(gw, config), "ObjectNotFoundException", unregistered)
    refused(gw, put_action(gw, "rate(1 hour)"), "ObjectNotFoundException", unregistered)


def test_a_max_capacity_over_the_host_budget_names_the_limit(tmp_path: Path) -> None:
    with gateway(tmp_path / "state", spec(tmp_path), env={"TANDEM_MAX_CONTAINERS": "3"}) as gw:
        over = {**TARGET, "MinCapacity": 1, "MaxCapacity": 4}
        refused(gw, lambda: gw.aas.register_scalable_target(**over), "ValidationException",
                "MaxCapacity 4", "3 containers", "TANDEM_MAX_CONTAINERS")  # fmt: skip
        gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=3)  # it fits
        action = {**TARGET, "ScheduledActionName": "s", "Schedule": "rate(1 hour)",
                  "ScalableTargetAction": {"MaxCapacity": 5}}  # fmt: skip
        refused(gw, lambda: gw.aas.put_scheduled_action(**action), "ValidationException",
                "MaxCapacity 5", "TANDEM_MAX_CONTAINERS")  # fmt: skip


def test_bad_policies_and_schedules_are_refused_and_nothing_is_stored(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=0, MaxCapacity=3)  # 0 is allowed
    stored = rows(gw)
    missing = {"MetricName": "Missing", "Namespace": LOAD["Namespace"], "Statistic": "Average"}
    custom = {"TargetValue": 10.0, "CustomizedMetricSpecification": missing}
    refused(gw, put_policy(gw, custom), "ValidationException", "MetricName", "does not exist")
    ecs = {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    other = {"TargetValue": 10.0, "PredefinedMetricSpecification": ecs}
    refused(gw, put_policy(gw, other), "ValidationException", "PredefinedMetricType")
    refused(gw, put_policy(gw, None), "ValidationException", "TargetTracking")
    for schedule, word in (
        ("cron(0 25 * * ? *)", "hours"),
        ("cron(0 1 * * *)", "6 fields"),
        ("cron(0 1 1 * 1 *)", "'?'"),
        ("every day", "at("),
        ("at(2026-13-01T00:00:00)", "month"),
        ("cron(0 1 L * ? *)", "L"),
    ):
        refused(gw, put_action(gw, schedule), "ValidationException", "Schedule", word)
    delete = {**TARGET, "PolicyName": "none"}
    refused(gw, lambda: gw.aas.delete_scaling_policy(**delete), "ObjectNotFoundException", "none")
    many = {"ServiceNamespace": "sagemaker", "MaxResults": 51}
    refused(gw, lambda: gw.aas.describe_scalable_targets(**many), "ValidationException", "Max")
    assert rows(gw) == stored


def put_policy(gw: Gateway, config: dict[str, Any] | None) -> Callable[[], Any]:
    params: dict[str, Any] = {"PolicyName": "p", **TARGET, "PolicyType": TT}
    if config is not None:
        params["TargetTrackingScalingPolicyConfiguration"] = config
    return lambda: gw.aas.put_scaling_policy(**params)


def put_action(gw: Gateway, schedule: str) -> Callable[[], Any]:
    params = {**TARGET, "ScheduledActionName": "s", "Schedule": schedule,
              "ScalableTargetAction": {"MinCapacity": 2}}  # fmt: skip
    return lambda: gw.aas.put_scheduled_action(**params)


def test_a_raw_client_gets_validation_errors_not_500s(gw: Gateway) -> None:
    import httpx

    def post(op: str, body: bytes) -> httpx.Response:
        headers = {"X-Amz-Target": f"AnyScaleFrontendService.{op}",
                   "Content-Type": "application/x-amz-json-1.1"}  # fmt: skip
        return httpx.post(gw.url + "/", content=body, headers=headers, timeout=10)

    for op, body, word in (
        ("RegisterScalableTarget", b"{not json", "JSON"),
        ("RegisterScalableTarget", b'{"ServiceNamespace": 5}', "ServiceNamespace"),
        ("RegisterScalableTarget", b'{"ServiceNamespace": "sagemaker"}', "ResourceId"),
        ("GetPredictiveScalingForecast", b"{}", "not served"),
    ):
        answer = post(op, body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["__type"] == "ValidationException"
        assert word in answer.json()["Message"]


def test_the_fifty_first_policy_of_a_target_is_over_the_quota(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    config = {"TargetValue": 10.0, "PredefinedMetricSpecification": PER_INSTANCE}
    for i in range(50):
        gw.aas.put_scaling_policy(
            PolicyName=f"p{i}", **TARGET, PolicyType=TT,
            TargetTrackingScalingPolicyConfiguration=config,
        )  # fmt: skip
    changed = {**config, "TargetValue": 20.0}
    again = {"PolicyName": "p0", **TARGET, "PolicyType": TT,
             "TargetTrackingScalingPolicyConfiguration": changed}  # fmt: skip
    gw.aas.put_scaling_policy(**again)  # replacing one is not a new one
    extra = {**again, "PolicyName": "p50"}
    refused(gw, lambda: gw.aas.put_scaling_policy(**extra), "LimitExceededException", "50")
