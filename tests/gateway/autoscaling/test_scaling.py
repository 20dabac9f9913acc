"""Scaling a real endpoint: out under load and back in after it, through the seed's own calls."""

from __future__ import annotations

from tests.gateway.autoscaling.conftest import (
    LOAD,
    RESOURCE,
    TARGET,
    Gateway,
    feeding,
    invoking,
    until,
)


def seed_calls(gw: Gateway) -> None:
    """Seed 002's two calls, unchanged but for ``endpoint_url``."""
    resource_id = RESOURCE
    gw.aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    gw.aas.put_scaling_policy(
        PolicyName="Invocations-ScalingPolicy",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 4000.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 600,
            "ScaleOutCooldown": 300,
        },
    )


def test_a_custom_metric_scales_the_endpoint_out_and_back_in_with_no_failed_request(
    gw: Gateway,
) -> None:
    seed_calls(gw)
    # The seed's policy reads InvocationsPerInstance, which the store keeps per real minute even
    # with one-second minutes: a whole minute of this test's invocation loop is above 90 % of
    # its 4,000 per instance and would veto the scale-in for 15 of them (scale-in needs every
    # policy to agree, as on AWS), depending on where the test falls on the clock.
    gw.aas.delete_scaling_policy(PolicyName="Invocations-ScalingPolicy", **TARGET)
    gw.publish(0.0)  # the metric exists before a policy names it
    answer = gw.aas.put_scaling_policy(
        PolicyName="load", **TARGET, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "CustomizedMetricSpecification": {**LOAD, "Statistic": "Average"},
            # 5 s here: longer than a mixed datapoint (before and after the decision) lasts
            "ScaleOutCooldown": 300, "ScaleInCooldown": 60,
        },
    )  # fmt: skip
    assert [a["AlarmName"].split("-")[-6] for a in answer["Alarms"]] == ["AlarmHigh", "AlarmLow"]
    # Shared by the instances decided on: ceil(1 * 300 / 100) = 3, then 100 each: stays 3, however
    # long the new instances take to start on a busy machine.
    load = [300.0]
    with (
        invoking(gw) as failures,
        feeding(gw, lambda: load[0] / gw.variant()["DesiredInstanceCount"]),
    ):
        until(lambda: gw.variant()["CurrentInstanceCount"] == 3, "the scale-out to 3")
        out = until(
            lambda: [a for a in gw.activities()[:1] if a["StatusCode"] == "Successful"],
            "a successful activity",
        )
        assert len(gw.activities()) == 1  # one decision, not one per evaluation
        assert out[0]["Description"] == "Setting desired instance count to 3."
        assert (
            "monitor alarm TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh-"
            in (out[0]["Cause"])
        )
        assert "in state ALARM triggered policy load" in out[0]["Cause"]
        load[0] = 0.0  # the load stops: 15 datapoints below 90 % of the target scale in
        until(lambda: gw.variant()["CurrentInstanceCount"] == 1, "the scale-in to 1", timeout=120)
    assert failures == []
    latest = until(
        lambda: [a for a in gw.activities()[:1] if a["StatusCode"] == "Successful"],
        "the scale-in's activity",
    )
    assert latest[0]["Description"] == "Setting desired instance count to 1."
    assert "AlarmLow" in latest[0]["Cause"]
    assert gw.variant()["DesiredInstanceCount"] == 1


def test_real_invocations_scale_the_endpoint_out(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    high_resolution = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    gw.aas.put_scaling_policy(
        PolicyName="concurrency", **TARGET, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.5,  # two clients keep more than half a request in flight
            "PredefinedMetricSpecification": {"PredefinedMetricType": high_resolution},
            "ScaleOutCooldown": 0,
        },
    )  # fmt: skip
    with invoking(gw) as failures, invoking(gw) as more:
        # Fails fast while the invocation path does not feed the metric store.
        invocations = {"Namespace": "AWS/SageMaker", "MetricName": "Invocations"}
        until(lambda: gw.cw.list_metrics(**invocations)["Metrics"], "Invocations", timeout=5)
        # 3 datapoints of 10 s (the store keeps this metric at 10 s), then the start.
        until(lambda: gw.variant()["CurrentInstanceCount"] == 2, "the scale-out", timeout=90)
    assert failures == more == []
