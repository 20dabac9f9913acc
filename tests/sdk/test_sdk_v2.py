"""The SageMaker Python SDK v2, unchanged, against Tandem: its defaults, its flows, its answers.

Each flow runs as a script in the SDK's own environment (``flows/``), pointed at a real gateway
and the moto S3 server by ``AWS_ENDPOINT_URL_*``; the test checks what it printed against the
model trained here: the answers must be the user's code's (probabilities from ``predict_fn``,
in ``output_fn``'s shape), not the framework's defaults (labels).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.multimodel.stores import pack, train_classifier
from tests.sdk.conftest import BUCKET, ENTRY_POINT, MODEL_DATA, Stack, rows

pytestmark = [pytest.mark.slow, pytest.mark.sklearn]


@pytest.fixture(scope="module")
def sklearn_flow(stack: Stack) -> dict[str, Any]:
    """One deploy -> predict -> teardown run, shared by the tests that check its parts."""
    sent = rows(4, seed=11)
    given = {
        "model_data": MODEL_DATA,
        "entry_point": ENTRY_POINT,
        "source_dir": str(stack.source_dir),
        "rows": sent,
    }
    outcome, _ = stack.flow("sklearn_flow.py", **given)
    return {**outcome, "sent": sent}


def probabilities(stack: Stack, sent: list[list[float]]) -> list[float]:
    return stack.model.predict_proba(sent)[:, 1].tolist()


def test_sklearn_model_with_source_dir_deploys_and_answers_from_the_users_code(
    stack: Stack, sklearn_flow: dict[str, Any]
) -> None:
    expected = probabilities(stack, sklearn_flow["sent"])
    assert sklearn_flow["csv"]["probabilities"] == pytest.approx(expected)
    assert sklearn_flow["json"]["probabilities"] == pytest.approx(expected)
    # The SDK uploaded the code and named it as SageMaker's containers read it.
    env = sklearn_flow["environment"]
    assert env["SAGEMAKER_PROGRAM"] == ENTRY_POINT
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"].startswith("s3://")
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"].endswith("/sourcedir.tar.gz")
    assert "sagemaker-scikit-learn" in sklearn_flow["image"]


def test_the_sdks_own_teardown_deletes_endpoint_config_and_model(
    sklearn_flow: dict[str, Any],
) -> None:
    # predictor.delete_endpoint() deletes the config first, while the endpoint still uses it.
    assert sklearn_flow["teardown_error"] is None, sklearn_flow["teardown_error"]
    assert sklearn_flow["left"] == {"endpoints": [], "configs": [], "models": []}


def test_predictor_delete_model_after_delete_endpoint_gets_sagemakers_answer(
    sklearn_flow: dict[str, Any],
) -> None:
    """SDK v2 reads the deleted config to name the models: SageMaker refuses that read."""
    late = sklearn_flow["late_delete"]
    assert late is not None, "DescribeEndpointConfig answered for a deleted config"
    assert late["code"] == "ValidationException"
    assert "Could not find endpoint configuration" in late["message"]


def test_transformer_waits_and_prints_the_containers_log_lines(stack: Stack) -> None:
    sent = rows(6, seed=12)
    body = "".join(",".join(str(v) for v in row) + "\n" for row in sent)
    stack.s3.put_object(Bucket=BUCKET, Key="batch/in/rows.csv", Body=body.encode())
    outcome, printed = stack.flow(
        "transform_flow.py",
        model_data=MODEL_DATA,
        entry_point=ENTRY_POINT,
        source_dir=str(stack.source_dir),
        input=f"s3://{BUCKET}/batch/in/",
        output=f"s3://{BUCKET}/batch/out",
    )
    assert outcome["status"] == "Completed"
    # The SDK printed the container's own line, which it read through CloudWatch Logs.
    assert "tandem-sdk-test: model_fn loads model.joblib" in printed
    answer = stack.s3.get_object(Bucket=BUCKET, Key="batch/out/rows.csv.out")["Body"].read()
    got = [float(line) for line in answer.decode().split()]
    assert got == pytest.approx(probabilities(stack, sent))


def test_multi_data_model_serves_each_target_model(stack: Stack) -> None:
    other = train_classifier(8)  # a second model: the answers tell which one ran
    archive = pack(stack.folder / "other.tar.gz", other)
    stack.s3.put_object(Bucket=BUCKET, Key="train/other.tar.gz", Body=archive.read_bytes())
    sent = rows(3, seed=13)
    outcome, _ = stack.flow(
        "mme_flow.py",
        name="sdk-mme",
        prefix=f"s3://{BUCKET}/mme/",
        model_data=MODEL_DATA,
        entry_point=ENTRY_POINT,
        source_dir=str(stack.source_dir),
        models={"first.tar.gz": MODEL_DATA, "second.tar.gz": f"s3://{BUCKET}/train/other.tar.gz"},
        rows=sent,
    )
    assert outcome["answers"]["first.tar.gz"] == pytest.approx(probabilities(stack, sent))
    expected = other.predict_proba(sent)[:, 1].tolist()
    assert outcome["answers"]["second.tar.gz"] == pytest.approx(expected)
    assert outcome["listed"] == ["first.tar.gz", "second.tar.gz"]


def test_async_predictor_gets_its_answer_from_s3(stack: Stack) -> None:
    sent = rows(2, seed=14)
    outcome, _ = stack.flow(
        "async_flow.py",
        model_data=MODEL_DATA,
        entry_point=ENTRY_POINT,
        source_dir=str(stack.source_dir),
        output=f"s3://{BUCKET}/async/out",
        rows=sent,
    )
    assert outcome["kind"] == "AsyncPredictor"
    assert outcome["output"].startswith(f"s3://{BUCKET}/async/out/")
    assert outcome["answer"]["probabilities"] == pytest.approx(probabilities(stack, sent))
