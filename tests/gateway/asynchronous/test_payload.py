"""An endpoint with ``async_inference`` gives its containers a payload limit that fits
TANDEM_ASYNC_MAX_BYTES: Tandem's own containers refuse bodies over ``SAGEMAKER_MAX_PAYLOAD_IN_MB``
(6 by default), which would fail every big asynchronous input with a 413 ModelError.

The environment both backends build is checked as they build it; then the real scikit-learn
container, with a model trained now, answers a ~10 MB CSV through InvokeEndpointAsync while
InvokeEndpoint refuses the same body at the gateway (TANDEM_MAX_PAYLOAD is not raised).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from gateway.lifecycle.backends.docker import DockerBackend
from gateway.lifecycle.backends.process import ProcessBackend
from gateway.live import ContainerRuntime, Instance
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec
from tests.containers.sklearn_models import FEATURES, csv_body, train_classifier
from tests.gateway.asynchronous.conftest import Gateway, gateway
from tests.gateway.multimodel.stores import pack
from tests.support import wait_until

REALTIME_LIMIT = 6 * 1024 * 1024
KEY = "SAGEMAKER_MAX_PAYLOAD_IN_MB"


def container(tmp_path: Path, *, asynchronous: bool, **environment: str) -> ContainerRuntime:
    fields: dict[str, Any] = {
        "name": "churn",
        "containers": [{"framework": "sklearn", "environment": environment}],
    }
    if asynchronous:
        fields["async_inference"] = {"output_path": str(tmp_path / "out")}
    (runtime,) = Instance.from_spec(EndpointSpec.model_validate(fields)).containers
    return runtime


def environments(
    tmp_path: Path, runtime: ContainerRuntime, **settings: Any
) -> list[dict[str, str]]:
    """The container's environment as the process and the docker backends build it."""
    config = GatewaySettings(state_dir=tmp_path / "state", **settings)
    process = ProcessBackend(config).environment(
        runtime, port=1234, model_dir=tmp_path / "model", base_dir=tmp_path
    )
    return [process, DockerBackend(config).environment(runtime)]


def test_an_async_endpoint_s_containers_take_the_async_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY, raising=False)
    runtime = container(tmp_path, asynchronous=True)
    for env in environments(tmp_path, runtime):
        assert env[KEY] == "1024"  # the default TANDEM_ASYNC_MAX_BYTES, 1 GiB
    # A limit that is not a whole number of MiB is rounded up, so that the input still fits.
    for env in environments(tmp_path, runtime, async_max_bytes=25_000_000):
        assert env[KEY] == "24"
        assert float(env[KEY]) * 1024 * 1024 >= 25_000_000


def test_the_spec_s_own_setting_wins_and_real_time_endpoints_keep_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY, raising=False)
    chosen = container(tmp_path, asynchronous=True, **{KEY: "2"})
    assert [env[KEY] for env in environments(tmp_path, chosen)] == ["2", "2"]
    realtime = container(tmp_path, asynchronous=False)
    assert [KEY in env for env in environments(tmp_path, realtime)] == [False, False]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Any]]:
    folder = tmp_path_factory.mktemp("payload")
    model = train_classifier(3)
    pack(folder / "model.tar.gz", model)
    specs = [
        {
            "name": "churn",
            "containers": [
                {
                    "framework": "sklearn",
                    "model_data": str(folder / "model.tar.gz"),
                    "environment": {"TANDEM_INTRA_OP_THREADS": "1"},
                }
            ],
            "async_inference": {"output_path": str(folder / "answers")},
        }
    ]
    with gateway(folder, specs) as running_gateway:
        yield running_gateway, model


@pytest.mark.slow
def test_a_10_mb_csv_is_answered_async_and_refused_real_time(
    served: tuple[Gateway, Any],
) -> None:
    gw, model = served
    rows = np.random.default_rng(5).normal(size=(24_000, FEATURES))
    body = csv_body(rows)
    assert 2 * REALTIME_LIMIT > len(body) > REALTIME_LIMIT  # ~10 MB: over the container default
    source = gw.state.parent / "rows.csv"
    source.write_bytes(body)

    answer = gw.invoke("churn", str(source), ContentType="text/csv", Accept="application/json")
    output, failure = Path(answer["OutputLocation"]), Path(answer["FailureLocation"])
    wait_until(
        lambda: output.is_file() or failure.is_file(), timeout=120, what="the request to end"
    )
    assert not failure.exists(), failure.read_text()
    assert json.loads(output.read_bytes()) == model.predict(rows).tolist()

    with pytest.raises(ClientError) as caught:
        gw.runtime.invoke_endpoint(EndpointName="churn", Body=body, ContentType="text/csv")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert f"exceeds the limit of {REALTIME_LIMIT}" in error["Message"]
