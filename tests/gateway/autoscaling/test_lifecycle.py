"""Scheduled actions run on time; everything survives SIGKILL; everything goes with its endpoint."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import ClientError

from tests.gateway.autoscaling.conftest import TARGET, Gateway, gateway, spec, until
from tests.gateway.autoscaling.test_scaling import seed_calls


def test_a_scheduled_action_survives_sigkill_and_all_goes_with_the_endpoint(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with gateway(state, spec(tmp_path)) as gw:
        seed_calls(gw)
        when = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
        gw.aas.put_scheduled_action(
            **TARGET, ScheduledActionName="morning", Schedule=f"at({when})",
            ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 4},
        )  # fmt: skip
        gw.aas.put_scheduled_action(
            **TARGET, ScheduledActionName="weekdays", Schedule="cron(0 7 ? * MON-FRI *)",
            Timezone="Europe/Paris", ScalableTargetAction={"MinCapacity": 1},
        )  # fmt: skip
        until(lambda: gw.variant()["CurrentInstanceCount"] == 2, "the scheduled scale-out")
        causes = [a["Cause"] for a in gw.activities()]
        assert any("scheduled action name morning was triggered" in c for c in causes), causes
        assert any("minimum capacity was set to 2" in c for c in causes), causes
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(timeout=30)
    with gateway(state) as again:  # no spec file: the state folder alone brings it all back
        (target,) = again.aas.describe_scalable_targets(ServiceNamespace="sagemaker")[
            "ScalableTargets"
        ]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
        assert target["SuspendedState"] == {
            "DynamicScalingInSuspended": False,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        }
        policies = again.aas.describe_scaling_policies(ServiceNamespace="sagemaker")
        assert [p["PolicyName"] for p in policies["ScalingPolicies"]] == [
            "Invocations-ScalingPolicy"
        ]
        actions = again.aas.describe_scheduled_actions(ServiceNamespace="sagemaker")
        assert {a["ScheduledActionName"] for a in actions["ScheduledActions"]} == {
            "morning",
            "weekdays",
        }
        assert len(again.activities()) >= 2
        until(lambda: again.variant()["CurrentInstanceCount"] == 2, "the endpoint back at 2")
        again.sm.delete_endpoint(EndpointName="ep")
        until(lambda: _gone(again), "the endpoint deleted")
        for listing, member in (
            (again.aas.describe_scalable_targets, "ScalableTargets"),
            (again.aas.describe_scaling_policies, "ScalingPolicies"),
            (again.aas.describe_scheduled_actions, "ScheduledActions"),
            (again.aas.describe_scaling_activities, "ScalingActivities"),
        ):
            assert listing(ServiceNamespace="sagemaker")[member] == []


def test_deregistering_removes_the_policies_and_actions(gw: Gateway) -> None:
    seed_calls(gw)
    gw.aas.put_scheduled_action(
        **TARGET, ScheduledActionName="s", Schedule="rate(1 day)",
        ScalableTargetAction={"MaxCapacity": 4},
    )  # fmt: skip
    gw.aas.deregister_scalable_target(**TARGET)
    assert gw.aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert gw.aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    try:
        gw.aas.deregister_scalable_target(**TARGET)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ObjectNotFoundException"
    else:
        raise AssertionError("a second deregistration should find nothing")


def _gone(gw: Gateway) -> bool:
    try:
        gw.sm.describe_endpoint(EndpointName="ep")
    except ClientError:
        return True
    return False
