"""CloudWatch alarms over the metric store, and the step scaling policies they invoke."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.gateway.autoscaling.conftest import LOAD, TARGET, Gateway, feeding, until
from tests.gateway.cloudwatch.conftest import client_for

ALARM = {**LOAD, "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2,
         "Threshold": 100.0, "ComparisonOperator": "GreaterThanThreshold"}  # fmt: skip


def state(gw: Gateway, name: str) -> str:
    (alarm,) = gw.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["StateValue"])


def test_alarms_are_kept_set_by_hand_and_refuse_what_they_cannot_evaluate(gw: Gateway) -> None:
    gw.cw.put_metric_alarm(AlarmName="drill", **ALARM)
    assert state(gw, "drill") == "INSUFFICIENT_DATA"
    gw.cw.set_alarm_state(AlarmName="drill", StateValue="ALARM", StateReason="a drill")
    now = state(gw, "drill")
    history = gw.cw.describe_alarm_history(AlarmName="drill")["AlarmHistoryItems"]  # newest first
    assert history[-1]["HistoryItemType"] == "ConfigurationUpdate"
    updates = [h["HistorySummary"] for h in history if h["HistoryItemType"] == "StateUpdate"]
    assert updates[-1] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    # As on AWS, the alarm's next evaluation (no data: INSUFFICIENT_DATA) may have put it back
    # since; until then it is in ALARM.
    assert now == "ALARM" or (now == "INSUFFICIENT_DATA" and len(updates) >= 2), (now, updates)
    for kwargs, code in (
        ({**ALARM, "ExtendedStatistic": "p99"}, "InvalidParameterCombination"),
        ({**ALARM, "ComparisonOperator": "LessThanLowerThreshold"}, "InvalidParameterValue"),
        ({**ALARM, "Period": 7}, "InvalidParameterValue"),
        ({**ALARM, "DatapointsToAlarm": 3}, "InvalidParameterValue"),
    ):
        with pytest.raises(ClientError) as caught:
            gw.cw.put_metric_alarm(AlarmName="bad", **kwargs)
        assert caught.value.response["Error"]["Code"] == code
    assert [a["AlarmName"] for a in gw.cw.describe_alarms()["MetricAlarms"]] == ["drill"]
    with pytest.raises(ClientError) as caught:
        gw.cw.delete_alarms(AlarmNames=["drill", "nope"])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    gw.cw.delete_alarms(AlarmNames=["drill"])
    assert gw.cw.describe_alarms()["MetricAlarms"] == []


def test_an_alarm_drives_a_step_policy_out_to_the_maximum(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=3)
    arn = gw.aas.put_scaling_policy(
        PolicyName="step-out", **TARGET, PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
        },
    )["PolicyARN"]  # fmt: skip
    gw.publish(0.0)
    gw.cw.put_metric_alarm(AlarmName="high-load", **ALARM, AlarmActions=[arn])
    with feeding(gw, lambda: 500.0):
        until(lambda: state(gw, "high-load") == "ALARM", "the alarm")
        until(lambda: gw.variant()["CurrentInstanceCount"] == 3, "two steps out to 3")
    activities = gw.activities()
    assert [a["Description"] for a in activities][:2] == [
        "Setting desired instance count to 3.",
        "Setting desired instance count to 2.",
    ]
    assert (
        "monitor alarm high-load in state ALARM triggered policy step-out"
        in (activities[0]["Cause"])
    )
    assert gw.variant()["DesiredInstanceCount"] == 3  # the maximum holds it
    (policy,) = gw.aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [a["AlarmName"] for a in policy["Alarms"]] == ["high-load"]


def test_a_drill_sets_an_alarm_by_hand_and_its_step_policy_acts(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=3)
    arn = gw.aas.put_scaling_policy(
        PolicyName="exact", **TARGET, PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ExactCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 2}],
        },
    )["PolicyARN"]  # fmt: skip
    query = client_for(gw.url, "query")  # the AWS CLI's protocol, answered in XML
    query.put_metric_alarm(AlarmName="drill", **ALARM, AlarmActions=[arn])
    cbor = client_for(gw.url, "smithy-rpc-v2-cbor")
    cbor.set_alarm_state(AlarmName="drill", StateValue="ALARM", StateReason="a drill")
    until(lambda: gw.variant()["CurrentInstanceCount"] == 2, "the step to exactly 2")
    assert (
        "monitor alarm drill in state ALARM triggered policy exact" in gw.activities()[0]["Cause"]
    )
    (alarm,) = query.describe_alarms(AlarmNames=["drill"])["MetricAlarms"]
    assert alarm["AlarmActions"] == [arn]


def test_a_target_tracking_policy_s_alarms_are_in_describe_alarms(gw: Gateway) -> None:
    gw.aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=1)  # nothing starts
    gw.publish(0.0)
    answer = gw.aas.put_scaling_policy(
        PolicyName="load", **TARGET, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "CustomizedMetricSpecification": {**LOAD, "Statistic": "Average"}},
    )  # fmt: skip
    high, low = (a["AlarmName"] for a in answer["Alarms"])
    assert high.startswith("TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh-")
    shown = {a["AlarmName"]: a for a in gw.cw.describe_alarms()["MetricAlarms"]}
    assert set(shown) == {high, low}
    assert shown[high]["AlarmActions"] == shown[low]["AlarmActions"] == [answer["PolicyARN"]]
    assert (shown[high]["MetricName"], shown[high]["Statistic"]) == (LOAD["MetricName"], "Average")
    assert (shown[high]["Threshold"], shown[high]["ComparisonOperator"]) == (
        100.0, "GreaterThanThreshold")  # fmt: skip
    assert (shown[low]["Threshold"], shown[low]["EvaluationPeriods"]) == (90.0, 15)
    with feeding(gw, lambda: 500.0):
        until(lambda: state(gw, high) == "ALARM", "the high alarm")
    assert state(gw, low) == "OK"
    (policy,) = gw.aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [a["AlarmName"] for a in policy["Alarms"]] == [high, low]
    gw.aas.delete_scaling_policy(PolicyName="load", **TARGET)
    assert gw.cw.describe_alarms()["MetricAlarms"] == []
