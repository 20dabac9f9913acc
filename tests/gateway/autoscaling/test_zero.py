"""Scale to zero: a variant at zero instances holds its requests while one starts.

A real ``tandem serve`` with the scikit-learn container (a model trained here) and the real boto3
clients. Autoscaling evaluates every 0.2 s with one second per minute (as in ``conftest``); the
wake from zero does not wait for either: the held request itself asks for the instance.
"""

from __future__ import annotations

import concurrent.futures
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.containers.sklearn_models import csv_body, synthetic, train_classifier
from tests.gateway.asynchronous.conftest import Gateway, gateway, toy, wait_for_file
from tests.gateway.autoscaling.conftest import CONFIG, ENV, KEYS, TARGET
from tests.gateway.multimodel.stores import pack
from tests.support import wait_until

pytestmark = pytest.mark.slow

ROWS = synthetic(4, seed=3)


def sklearn(folder: Path, model: Any) -> dict[str, Any]:
    pack(folder / "model.tar.gz", model)
    return {
        "name": "ep",
        "containers": [
            {
                "framework": "sklearn",
                "model_data": str(folder / "model.tar.gz"),
                "environment": {"TANDEM_INTRA_OP_THREADS": "1"},
            }
        ],
    }


def clients(gw: Gateway) -> tuple[Any, Any, Any]:
    made = [
        boto3.client(service, endpoint_url=gw.url, config=CONFIG, **KEYS)
        for service in ("application-autoscaling", "sagemaker", "cloudwatch")
    ]
    return made[0], made[1], made[2]


def to_zero(sm: Any, name: str = "ep") -> None:
    """UpdateEndpointWeightsAndCapacities to 0 instances, until the variant runs none."""
    sm.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )

    def at_zero() -> bool:
        described = sm.describe_endpoint(EndpointName=name)
        (variant,) = described["ProductionVariants"]
        return described["EndpointStatus"] == "InService" and variant["CurrentInstanceCount"] == 0

    wait_until(at_zero, timeout=60, what=f"{name} at zero instances")


def held_count(cw: Any) -> float:
    """NoCapacityInvocationFailures over the last minutes (requests that found no instance)."""
    now = datetime.datetime.now(datetime.UTC)
    points = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="NoCapacityInvocationFailures",
        Dimensions=[{"Name": "EndpointName", "Value": "ep"},
                    {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - datetime.timedelta(minutes=5),
        EndTime=now + datetime.timedelta(minutes=1),
        Period=10,
        Statistics=["Sum"],
    )["Datapoints"]  # fmt: skip
    return float(sum(p["Sum"] for p in points))


@pytest.fixture(scope="module")
def model() -> Any:
    return train_classifier(3)


@pytest.fixture
def woken(tmp_path: Path, model: Any) -> Iterator[Gateway]:
    with gateway(tmp_path, [sklearn(tmp_path, model)], env=ENV) as gw:
        yield gw


def test_a_variant_at_zero_answers_a_held_request(woken: Gateway, model: Any) -> None:
    aas, sm, cw = clients(woken)
    aas.register_scalable_target(**TARGET, MinCapacity=0, MaxCapacity=2)
    to_zero(sm)
    # No instance runs: the request waits while the autoscaling side starts one, then answers.
    answer = woken.runtime.invoke_endpoint(
        EndpointName="ep", Body=csv_body(ROWS), ContentType="text/csv", Accept="text/csv"
    )
    got = [float(v) for v in answer["Body"].read().decode().split()]
    assert got == [float(v) for v in model.predict(ROWS)]
    (variant,) = sm.describe_endpoint(EndpointName="ep")["ProductionVariants"]
    assert variant["DesiredInstanceCount"] == 1
    causes = [a["Cause"] for a in aas.describe_scaling_activities(ServiceNamespace="sagemaker")
              ["ScalingActivities"]]  # fmt: skip
    assert any("no instance and requests wait" in c for c in causes), causes
    wait_until(lambda: held_count(cw) >= 1, timeout=30, what="NoCapacityInvocationFailures")


def test_past_the_wait_and_past_the_bound_the_answer_is_throttling(
    tmp_path: Path, model: Any
) -> None:
    # Not a scalable target: nothing starts an instance, so held requests time out.
    env = {**ENV, "TANDEM_HELD_WAIT": "10", "TANDEM_HELD_REQUESTS": "1"}
    with gateway(tmp_path, [sklearn(tmp_path, model)], env=env) as gw:
        _, sm, cw = clients(gw)
        to_zero(sm)
        body = {"EndpointName": "ep", "Body": csv_body(ROWS), "ContentType": "text/csv"}
        with pytest.raises(ClientError) as waited:
            gw.runtime.invoke_endpoint(**body)
        error = waited.value.response["Error"]
        assert error["Code"] == "ThrottlingException", error
        assert "TANDEM_HELD_WAIT" in error["Message"] and "AllTraffic" in error["Message"]
        assert waited.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        wait_until(lambda: held_count(cw) >= 1, timeout=30, what="the first held request")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(gw.runtime.invoke_endpoint, **body)
            wait_until(lambda: held_count(cw) >= 2, timeout=30, what="the second to be held")
            # The one place is taken: the next request is refused at once, naming the bound.
            with pytest.raises(ClientError) as bounded:
                gw.runtime.invoke_endpoint(**body)
            error = bounded.value.response["Error"]
            assert error["Code"] == "ThrottlingException", error
            assert "TANDEM_HELD_REQUESTS" in error["Message"]
            # An instance started by hand answers the one held.
            sm.update_endpoint_weights_and_capacities(
                EndpointName="ep",
                DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": 1}
                ],
            )
            answer = first.result(timeout=60)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert len(answer["Body"].read().decode().split()) == len(ROWS)


def test_an_async_endpoint_at_zero_answers_what_it_gets(tmp_path: Path) -> None:
    endpoint = {
        "name": "ep",
        "containers": [toy()],
        "async_inference": {"output_path": str(tmp_path / "out")},
    }
    with gateway(tmp_path, [endpoint], env=ENV) as gw:
        aas, sm, cw = clients(gw)
        aas.register_scalable_target(**TARGET, MinCapacity=0, MaxCapacity=2)
        wait_until(
            lambda: cw.list_metrics(MetricName="ApproximateBacklogSizePerInstance")["Metrics"],
            timeout=30, what="the backlog metric's first sample",
        )  # fmt: skip
        backlog = {
            "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": "ep"}], "Statistic": "Average",
        }  # fmt: skip
        aas.put_scaling_policy(
            PolicyName="backlog", PolicyType="TargetTrackingScaling", **TARGET,
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 5.0, "CustomizedMetricSpecification": backlog},
        )  # fmt: skip
        to_zero(sm)
        (tmp_path / "in.csv").write_text("4,5,6\n")
        answer = gw.invoke("ep", str(tmp_path / "in.csv"), ContentType="text/csv")
        assert wait_for_file(Path(answer["OutputLocation"]), timeout=90) == b"4,5,6\n"
        (variant,) = sm.describe_endpoint(EndpointName="ep")["ProductionVariants"]
        assert variant["DesiredInstanceCount"] >= 1
        causes = [a["Cause"] for a in aas.describe_scaling_activities(
            ServiceNamespace="sagemaker")["ScalingActivities"]]  # fmt: skip
        assert any("no instance and requests wait" in c for c in causes), causes
