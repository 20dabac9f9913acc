"""NotificationConfig's topics as webhooks: SageMaker's InferenceResult message, POSTed to a real
HTTP server of the test; a webhook that is down or refusing holds nothing up.

The message's shape is SageMaker's documented one (Asynchronous Inference, "Check prediction
results"): awsRegion, eventTime, receivedTime, invocationStatus, requestParameters,
responseParameters, inferenceId, eventVersion, eventSource, eventName, plus failureReason on an
error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.asynchronous.conftest import Gateway, gateway, wait_for_file
from tests.gateway.asynchronous.test_control_plane import control, create
from tests.gateway.asynchronous.webhook import Webhook, webhook
from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON, free_port, wait_until

pytestmark = pytest.mark.slow

TOP = {
    "awsRegion",
    "eventTime",
    "receivedTime",
    "invocationStatus",
    "requestParameters",
    "responseParameters",
    "inferenceId",
    "eventVersion",
    "eventSource",
    "eventName",
}


@dataclass
class World:
    gw: Gateway
    sm: Any
    hook: Webhook
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("notify")
    with webhook() as hook, gateway(folder, []) as gw:
        yield World(gw, control(gw.url), hook, folder)


def notified(folder: Path, name: str, success: str | None, error: str | None) -> dict[str, Any]:
    topics = {k: v for k, v in (("SuccessTopic", success), ("ErrorTopic", error)) if v}
    return {
        "OutputConfig": {
            "S3OutputPath": str(folder / name / "out"),
            "S3FailurePath": str(folder / name / "failed"),
            "NotificationConfig": topics,
        }
    }


def when(stamp: str) -> datetime:
    assert stamp.endswith("Z") and len(stamp) == len("2022-01-25T22:46:00.608Z"), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def common(message: dict[str, Any], inference_id: str, endpoint: str, location: str) -> None:
    assert message["awsRegion"] == "us-east-1"
    assert message["inferenceId"] == inference_id
    assert message["eventVersion"] == "1.0"
    assert message["eventSource"] == "aws:sagemaker"
    assert message["eventName"] == "InferenceResult"
    assert when(message["receivedTime"]) <= when(message["eventTime"])
    assert message["requestParameters"]["endpointName"] == endpoint
    assert message["requestParameters"]["inputLocation"] == location


def test_a_success_message_has_sagemakers_shape(world: World) -> None:
    hook = world.hook
    create(world.sm, "ok", notified(world.folder, "ok", f"{hook.url}/s", f"{hook.url}/e"))
    source = world.folder / "in.csv"
    source.write_text("1,2\n")
    answer = world.gw.runtime.invoke_endpoint_async(
        EndpointName="ok",
        InputLocation=str(source),
        InferenceId="n-ok",
        ContentType="text/csv",
        Accept="text/csv",
    )
    message = hook.wait("/s", "n-ok")
    assert set(message) == TOP
    common(message, "n-ok", "ok", str(source))
    assert message["invocationStatus"] == "Completed"
    assert message["requestParameters"] == {
        "accept": "text/csv",
        "contentType": "text/csv",
        "endpointName": "ok",
        "inputLocation": str(source),
    }
    assert message["responseParameters"] == {
        "contentType": "text/csv",
        "outputLocation": answer["OutputLocation"],
    }
    assert Path(answer["OutputLocation"]).read_bytes() == b"1,2\n"
    (delivery,) = [d for d in hook.deliveries if d.body["inferenceId"] == "n-ok"]
    assert delivery.content_type == "application/json"
    assert hook.received("/e") == []


def test_an_error_message_names_the_reason_and_the_failure_object(world: World) -> None:
    hook = world.hook
    config = notified(world.folder, "bad", f"{hook.url}/s", f"{hook.url}/e")
    create(world.sm, "bad", config, CONTRACT_STATUS=500, CONTRACT_MESSAGE="model exploded")
    source = world.folder / "bad.csv"
    source.write_text("1\n")
    answer = world.gw.runtime.invoke_endpoint_async(
        EndpointName="bad", InputLocation=str(source), InferenceId="n-bad"
    )
    message = hook.wait("/e", "n-bad")
    assert set(message) == TOP | {"failureReason"}
    common(message, "n-bad", "bad", str(source))
    assert message["invocationStatus"] == "Failed"
    assert message["failureReason"].startswith("ModelError: Received server error (500)")
    assert "model exploded" in message["failureReason"]
    assert message["responseParameters"] == {
        "contentType": "application/json",
        "failureLocation": answer["FailureLocation"],
    }
    assert wait_for_file(Path(answer["FailureLocation"]))
    assert not [m for m in hook.received("/s") if m["inferenceId"] == "n-bad"]


def test_a_webhook_that_is_down_does_not_stop_the_queue(world: World) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    create(world.sm, "deaf", notified(world.folder, "deaf", nobody, nobody))
    source = world.folder / "deaf.csv"
    source.write_text("5\n")
    ids = [f"deaf-{i}" for i in range(5)]
    for inference_id in ids:
        world.gw.runtime.invoke_endpoint_async(
            EndpointName="deaf", InputLocation=str(source), InferenceId=inference_id
        )
    for inference_id in ids:
        out = world.folder / "deaf" / "out" / f"{inference_id}.out"
        assert wait_for_file(out) == b"5\n"

    def all_completed() -> bool:
        rows = [r for r in world.gw.rows() if r[1] in ids]
        return len(rows) == len(ids) and all(r[2] == "Completed" for r in rows)

    wait_until(all_completed, timeout=60, what="every deaf request to be Completed")
    # The gateway said why the message was lost.
    wait_until(
        lambda: "not delivered" in world.gw.log.read_text(errors="replace"),
        timeout=60,
        what="a log line about the lost notification",
    )


def test_a_refusing_webhook_gets_the_message_again(tmp_path: Path) -> None:
    with webhook(fail_first=2) as hook, gateway(tmp_path, []) as gw:
        sm = control(gw.url)
        create(sm, "retry", notified(tmp_path, "retry", f"{hook.url}/s", None))
        source = tmp_path / "r.csv"
        source.write_text("1\n")
        gw.runtime.invoke_endpoint_async(
            EndpointName="retry", InputLocation=str(source), InferenceId="again"
        )
        message = hook.wait("/s", "again")
        assert message["invocationStatus"] == "Completed"
        assert hook.posts == 3  # two 503s, then delivered
        assert len(hook.received("/s")) == 1


@pytest.mark.parametrize(
    ("name", "topic"),
    [("sns", "arn:aws:sns:us-east-1:123456789012:results"), ("ftp", "ftp://127.0.0.1/hook")],
)
def test_a_topic_that_is_not_a_webhook_is_refused_at_create_time(
    world: World, name: str, topic: str
) -> None:
    world.sm.create_model(
        ModelName=name,
        PrimaryContainer={"Environment": {"TANDEM_COMMAND": f"{PYTHON} {CONTRACT_SERVER}"}},
    )
    config = notified(world.folder, name, None, topic)
    with pytest.raises(ClientError) as caught:
        world.sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name}],
            AsyncInferenceConfig=config,
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "notificationConfig.errorTopic" in error["Message"]
    assert "SNS topics are not supported" in error["Message"]
    with pytest.raises(ClientError):
        world.sm.describe_endpoint_config(EndpointConfigName=name)  # nothing was stored
