"""Application Auto Scaling of an inference component's copies on a real ``tandem serve``:
``inference-component/<name>`` by ``sagemaker:inference-component:DesiredCopyCount``; a
request to the component at zero copies is held and wakes it through its scalable target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import CONFIG, KEYS, clients
from tests.gateway.lifecycle.test_components import answer, component_status, serve, setup
from tests.gateway.lifecycle.test_components import models as models  # the fixture
from tests.support import wait_until

pytestmark = pytest.mark.slow

TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": "inference-component/large",
    "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
}


def test_a_component_at_zero_wakes_through_its_scalable_target(
    tmp_path: Path,
    models: dict[str, Path],
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("TANDEM_AUTOSCALING_INTERVAL", "0.2")
    monkeypatch.setenv("TANDEM_AUTOSCALING_MINUTE", "1")
    context, port = serve(tmp_path, tmp_path / "state")
    with context:
        url = f"http://127.0.0.1:{port}"
        control, runtime = clients(url)
        aas = boto3.client("application-autoscaling", endpoint_url=url, config=CONFIG, **KEYS)
        setup(control, models)
        aas.register_scalable_target(**TARGET, MinCapacity=0, MaxCapacity=2)
        (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert target["ResourceId"] == "inference-component/large"
        policy = {
            "PolicyName": "per-copy",
            **TARGET,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 1000.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
                },
            },
        }
        aas.put_scaling_policy(**policy)
        # A variant's predefined metric is not an inference component's.
        variant_metric = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
        wrong = {**policy["TargetTrackingScalingPolicyConfiguration"],
                 "PredefinedMetricSpecification": variant_metric}  # fmt: skip
        with pytest.raises(ClientError) as refused:
            aas.put_scaling_policy(**{**policy, "TargetTrackingScalingPolicyConfiguration": wrong})
        assert refused.value.response["Error"]["Code"] == "ValidationException"

        control.update_inference_component_runtime_config(
            InferenceComponentName="large", DesiredRuntimeConfig={"CopyCount": 0}
        )
        zero = component_status(control, "large", "InService")
        assert zero["RuntimeConfig"]["CurrentCopyCount"] == 0
        # Held, it asks for a copy: the evaluator sets the copy count, the request is answered.
        assert answer(runtime, "large") == pytest.approx(103.0, abs=1e-6)

        # (Idle again, the policy may scale it back in to zero: MinCapacity is 0.)
        def woke() -> Any:
            found = aas.describe_scaling_activities(ServiceNamespace="sagemaker")
            return [
                a
                for a in found["ScalingActivities"]
                if a["Description"] == "Setting desired copy count to 1."
            ]

        (activity, *_) = wait_until(woke, timeout=60, what="the scaling activity")
        assert activity["ResourceId"] == "inference-component/large"
        assert activity["ScalableDimension"] == TARGET["ScalableDimension"]
