"""``tandem endpoints describe`` shows an endpoint's autoscaling, read from a real gateway's
Application Auto Scaling API: the scalable target's bounds, its policy and the activity that
raised the endpoint to its new minimum."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.autoscaling.conftest import TARGET, gateway, spec, until
from tests.gateway.cli.test_endpoints_cli import ok, tandem

pytestmark = pytest.mark.slow


def test_describe_lists_targets_policies_and_the_last_activities(tmp_path: Path) -> None:
    with gateway(tmp_path / "state", spec(tmp_path)) as gw:
        before = ok("endpoints", "describe", "ep", "--url", gw.url)
        assert "no scalable target" in before
        gw.aas.register_scalable_target(**TARGET, MinCapacity=2, MaxCapacity=3)
        gw.aas.put_scaling_policy(
            PolicyName="per-instance",
            **TARGET,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 4000.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": 300,
            },
        )

        def raised() -> bool:
            return any(a["StatusCode"] == "Successful" for a in gw.activities())

        until(raised, "the scale-out to the new minimum to succeed", timeout=120)
        (activity,) = gw.activities()
        described = ok("endpoints", "describe", "ep", "--url", gw.url)
        gone = tandem("endpoints", "describe", "nope", "--url", gw.url)
    for text in ("scalable targets", "scaling policies", "last scaling activities", "AllTraffic"):
        assert text in described
    scaling = described[described.index("scalable targets") :]
    target_row = next(line for line in scaling.splitlines() if "AllTraffic" in line)
    assert [cell.strip() for cell in target_row.split("│")[2:4]] == ["2", "3"]  # min, max
    assert "per-instance" in described and "TargetTrackingScaling" in described
    assert "SageMakerVariantInvocationsPerInstance = 4000" in described
    assert "cooldown in 300 s" in described
    assert "Successful" in described
    assert " ".join(activity["Cause"].split()[:3]) in " ".join(described.split())
    assert gone.returncode == 2  # an unknown endpoint fails before any autoscaling call
