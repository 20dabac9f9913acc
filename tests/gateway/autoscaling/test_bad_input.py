"""Bad input gets Application Auto Scaling's error codes, naming the parameter; nothing stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.autoscaling.conftest import LOAD, TARGET, Gateway

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


def test_bad_targets_policies_and_schedules_are_refused_and_nothing_is_stored(gw: Gateway) -> None:
    aas = gw.aas
    register = aas.register_scalable_target
    refused(gw, lambda: register(**{**TARGET, "ResourceId": "endpoint/nope/variant/AllTraffic"},
                                 MinCapacity=1, MaxCapacity=2),
            "ValidationException", "ResourceId", "no endpoint 'nope'")  # fmt: skip
    refused(gw, lambda: register(**{**TARGET, "ResourceId": "endpoint/ep/variant/Other"},
                                 MinCapacity=1, MaxCapacity=2),
            "ValidationException", "no variant 'Other'")  # fmt: skip
    refused(gw, lambda: register(**{**TARGET, "ResourceId": "ep"}, MinCapacity=1, MaxCapacity=2),
            "ValidationException", "ResourceId")  # fmt: skip
    refused(gw, lambda: register(**{**TARGET, "ServiceNamespace": "ecs"}, MinCapacity=1,
                                 MaxCapacity=2), "ValidationException", "ServiceNamespace")  # fmt: skip
    refused(gw, lambda: register(**{**TARGET, "ScalableDimension": "ecs:service:DesiredCount"},
                                 MinCapacity=1, MaxCapacity=2),
            "ValidationException", "ScalableDimension")  # fmt: skip
    refused(gw, lambda: register(**TARGET, MinCapacity=3, MaxCapacity=2),
            "ValidationException", "MinCapacity")  # fmt: skip
    refused(gw, lambda: register(**TARGET, MinCapacity=1, MaxCapacity=65),
            "ValidationException", "MaxCapacity", "64")  # fmt: skip
    refused(gw, lambda: register(**TARGET, MinCapacity=1), "ValidationException", "MaxCapacity")
    policy = {"PolicyName": "p", **TARGET, "PolicyType": TT}
    config = {"TargetValue": 10.0, "PredefinedMetricSpecification": PER_INSTANCE}
    refused(gw, lambda: aas.put_scaling_policy(
        **policy, TargetTrackingScalingPolicyConfiguration=config),
        "ObjectNotFoundException", "No scalable target registered")  # fmt: skip
    refused(gw, lambda: aas.put_scheduled_action(
        **TARGET, ScheduledActionName="s", Schedule="rate(1 hour)",
        ScalableTargetAction={"MinCapacity": 2}),
        "ObjectNotFoundException", "No scalable target registered")  # fmt: skip

    register(**TARGET, MinCapacity=0, MaxCapacity=3)  # 0 is allowed, as the issue asks
    stored = rows(gw)
    custom = {"TargetValue": 10.0, "CustomizedMetricSpecification": {
        "MetricName": "Missing", "Namespace": LOAD["Namespace"], "Statistic": "Average"}}  # fmt: skip
    refused(gw, lambda: aas.put_scaling_policy(
        **policy, TargetTrackingScalingPolicyConfiguration=custom),
        "ValidationException", "MetricName", "does not exist")  # fmt: skip
    other = {"TargetValue": 10.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}  # fmt: skip
    refused(gw, lambda: aas.put_scaling_policy(
        **policy, TargetTrackingScalingPolicyConfiguration=other),
        "ValidationException", "PredefinedMetricType")  # fmt: skip
    refused(gw, lambda: aas.put_scaling_policy(**policy), "ValidationException",
            "TargetTrackingScalingPolicyConfiguration")  # fmt: skip
    for schedule, word in (("cron(0 25 * * ? *)", "hours"), ("cron(0 1 * * *)", "6 fields"),
                           ("cron(0 1 1 * 1 *)", "'?'"), ("every day", "at("),
                           ("at(2026-13-01T00:00:00)", "month"), ("cron(0 1 L * ? *)", "L")):  # fmt: skip
        refused(gw, lambda s=schedule: aas.put_scheduled_action(
            **TARGET, ScheduledActionName="s", Schedule=s,
            ScalableTargetAction={"MinCapacity": 2}),
            "ValidationException", "Schedule", word)  # fmt: skip
    refused(gw, lambda: aas.delete_scaling_policy(PolicyName="none", **TARGET),
            "ObjectNotFoundException", "none")  # fmt: skip
    refused(gw, lambda: aas.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=51),
            "ValidationException", "MaxResults")  # fmt: skip
    assert rows(gw) == stored


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
