"""Every invocation through a real ``tandem serve`` reaches CloudWatch's ``Invocations``.

The invocation core reports each finished call to its ``Recorder`` hook, and the CloudWatch
recorder is one of them: what boto3's ``cloudwatch`` client reads back is what was sent, counted
once each, errors in their own metric. A read flushes the recorder first, so no waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from tests.gateway.cloudwatch.conftest import KEYS, client_for
from tests.gateway.processes import shell
from tests.support import PYTHON, free_port, running

DIMENSIONS = [
    {"Name": "EndpointName", "Value": "counted"},
    {"Name": "VariantName", "Value": "AllTraffic"},
]


def statistic(cw: Any, name: str, since: datetime) -> float:
    answer = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=name,
        Dimensions=DIMENSIONS,
        StartTime=since - timedelta(minutes=5),
        EndTime=since + timedelta(minutes=10),
        Period=60,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in answer["Datapoints"])


def test_invocations_read_back_through_boto3_equal_the_requests_sent(tmp_path: Path) -> None:
    spec = tmp_path / "counted.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "counted", "containers": [{"command": shell("exec $SERVER")}]})
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(spec), "--state-dir", str(tmp_path / "state")]
    since = datetime.now(UTC)
    with running([*args, "--port", str(port)], url=url, log=tmp_path / "gw.log", timeout=60):
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, **KEYS)
        sent = 7
        for i in range(sent):
            body = runtime.invoke_endpoint(EndpointName="counted", Body=f"{i}".encode())["Body"]
            assert body.read()
        # A request refused before any instance took it is no invocation of the variant.
        with pytest.raises(ClientError):
            runtime.invoke_endpoint(EndpointName="counted", TargetVariant="nope", Body=b"1")
        cw = client_for(url)
        assert statistic(cw, "Invocations", since) == sent
        assert statistic(cw, "Invocation4XXErrors", since) == 0
        assert statistic(cw, "Invocation5XXErrors", since) == 0


def test_invocations_per_instance_divides_by_the_instances_from_the_first_request(
    tmp_path: Path,
) -> None:
    """Two instances: each minute's ``InvocationsPerInstance`` is its ``Invocations`` halved,
    also for the requests sent before the metric store's first flush (none runs here: its
    interval is an hour, so only the reconciler's report of the count can say two)."""
    spec = tmp_path / "counted.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "counted",
                "instance_count": 2,
                "containers": [{"command": shell("exec $SERVER")}],
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(spec), "--state-dir", str(tmp_path / "state")]
    env = {"TANDEM_METRIC_FLUSH_INTERVAL": "3600"}
    since = datetime.now(UTC)
    with running(
        [*args, "--port", str(port)], env=env, url=url, log=tmp_path / "gw.log", timeout=60
    ):
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, **KEYS)
        sent = 10
        for i in range(sent):
            assert runtime.invoke_endpoint(EndpointName="counted", Body=f"{i}".encode())["Body"]
        cw = client_for(url)
        invocations = datapoints(cw, "Invocations", since)
        per_instance = datapoints(cw, "InvocationsPerInstance", since)
    assert sum(invocations.values()) == sent
    assert per_instance == {minute: count / 2 for minute, count in invocations.items()}


def datapoints(cw: Any, name: str, since: datetime) -> dict[datetime, float]:
    """Each minute's Sum of ``name`` on the test's variant."""
    answer = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=name,
        Dimensions=DIMENSIONS,
        StartTime=since - timedelta(minutes=5),
        EndTime=since + timedelta(minutes=10),
        Period=60,
        Statistics=["Sum"],
    )
    return {point["Timestamp"]: point["Sum"] for point in answer["Datapoints"]}
