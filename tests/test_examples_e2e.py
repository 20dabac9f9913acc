"""Both example endpoints behind a real ``tandem serve``, called with boto3's own client.

Every served answer is compared with the prediction computed in-process from the same artifacts
(``pipelines.examples.reference``): the containers, the gateway and the codecs between them must
not change a number.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from gateway.cli.invoke import parse_server_timing
from pipelines.examples import SPECS, churn, reference, zoo
from tests.support import PYTHON, ROOT, free_port, running

pytestmark = [pytest.mark.slow, pytest.mark.sklearn, pytest.mark.pytorch, pytest.mark.tensorflow]

ZOO = ("sklearn", "pytorch", "tensorflow")


def build_examples(*names: str) -> None:
    """The examples built (if missing) where the specs point, as the demo builds them."""
    built = subprocess.run(
        [PYTHON, "-m", "pipelines.examples.build", *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The examples built (if missing) where the specs point, and served by one gateway."""
    build_examples("churn", "zoo")
    state = tmp_path_factory.mktemp("gateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        PYTHON,
        "-m",
        "gateway",
        "serve",
        str(SPECS["churn"]),
        str(SPECS["zoo"]),
        "--port",
        str(port),
        "--state-dir",
        str(state),
    ]
    with running(args, url=url, timeout=300, log=state / "gateway.log"):
        yield url


@pytest.fixture(scope="module")
def client(gateway_url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=gateway_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reference")


def call(
    client: Any,
    endpoint: str,
    body: bytes,
    content_type: str,
    accept: str = "application/json",
    **extra: str,
) -> tuple[bytes, dict[str, str]]:
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType=content_type, Accept=accept, **extra
    )
    return response["Body"].read(), response["ResponseMetadata"]["HTTPHeaders"]


def as_array(answer: bytes) -> np.ndarray:
    """A JSON answer (TF-Serving's ``predictions`` or a bare list) as a 2-D array."""
    decoded = json.loads(answer)
    rows = decoded["predictions"] if isinstance(decoded, dict) else decoded
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)


def csv_array(answer: bytes) -> np.ndarray:
    rows = [row for row in csv.reader(io.StringIO(answer.decode())) if row]
    return np.asarray(rows, dtype=np.float64)


def steps(headers: dict[str, str]) -> list[str]:
    return [name for name, _ in parse_server_timing(headers.get("server-timing"))]


# ---- zoo: Direct ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ZOO)
def test_zoo_containers_answer_like_their_models(client: Any, scratch: Path, hostname: str) -> None:
    x, _ = zoo.dataset(8, seed=77)
    rows = x.tolist()
    body = {"instances": rows} if hostname == "tensorflow" else rows
    answer, headers = call(
        client,
        "zoo",
        json.dumps(body).encode(),
        "application/json",
        TargetContainerHostname=hostname,
    )
    expected = reference.zoo_predictions(hostname, x, scratch)
    np.testing.assert_allclose(as_array(answer), expected, rtol=1e-5, atol=1e-6)
    assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert steps(headers) == [hostname, "overhead"]


@pytest.mark.parametrize("hostname", ZOO)
def test_zoo_containers_take_csv(client: Any, scratch: Path, hostname: str) -> None:
    x, _ = zoo.dataset(5, seed=78)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()
    answer, _ = call(client, "zoo", body, "text/csv", TargetContainerHostname=hostname)
    expected = reference.zoo_predictions(hostname, x, scratch)
    np.testing.assert_allclose(as_array(answer), expected, rtol=1e-5, atol=1e-6)


def test_zoo_needs_a_target_container(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError):
        call(client, "zoo", b"[[0, 0, 0, 0]]", "application/json")
    with pytest.raises(client.exceptions.ValidationError, match="xgboost"):
        call(
            client, "zoo", b"[[0, 0, 0, 0]]", "application/json", TargetContainerHostname="xgboost"
        )


# ---- churn: Serial -------------------------------------------------------------------------------


def test_churn_scores_a_batch_of_raw_rows(client: Any, scratch: Path) -> None:
    rows, _ = churn.raw_rows(25, seed=4242)
    answer, headers = call(client, "churn", churn.to_csv(rows).encode(), "text/csv")
    expected = reference.churn_probabilities(rows, scratch)
    assert expected.shape == (25, 1)
    np.testing.assert_allclose(as_array(answer), expected, rtol=1e-5, atol=1e-6)
    assert headers["content-type"].startswith("application/json")
    assert steps(headers) == ["preprocess", "classifier", "overhead"]


def test_churn_answers_csv_when_asked(client: Any, scratch: Path) -> None:
    rows, _ = churn.raw_rows(6, seed=4343)
    answer, headers = call(
        client, "churn", churn.to_csv(rows).encode(), "text/csv", accept="text/csv"
    )
    assert headers["content-type"].startswith("text/csv")
    expected = reference.churn_probabilities(rows, scratch)
    np.testing.assert_allclose(csv_array(answer), expected, rtol=1e-5, atol=1e-6)


def test_churn_handles_unseen_categories(client: Any, scratch: Path) -> None:
    rows, _ = churn.raw_rows(3, seed=4444)
    rows[1][0] = "ZZ"  # a state the preprocessing never saw: one-hot all zeros, not an error
    answer, _ = call(client, "churn", churn.to_csv(rows).encode(), "text/csv")
    np.testing.assert_allclose(
        as_array(answer), reference.churn_probabilities(rows, scratch), rtol=1e-5, atol=1e-6
    )


def test_churn_bad_row_is_a_model_error_from_preprocess(client: Any, scratch: Path) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        call(client, "churn", b"CA,not-a-number\n", "text/csv")
    assert "preprocess" in str(info.value)
    # The endpoint still serves afterwards.
    rows, _ = churn.raw_rows(2, seed=4545)
    answer, _ = call(client, "churn", churn.to_csv(rows).encode(), "text/csv")
    np.testing.assert_allclose(
        as_array(answer), reference.churn_probabilities(rows, scratch), rtol=1e-5, atol=1e-6
    )
