"""A MultiModel container whose models live in S3: a real S3 protocol server (moto) on loopback."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tests.gateway.harness import sagemaker_client
from tests.gateway.multimodel.archives import write_tar
from tests.gateway.multimodel.stores import (
    SLOW_MODEL_FN,
    csv_body,
    gateway,
    loaded,
    metric,
    model_bytes,
    pack,
    predictions,
    synthetic,
    train_classifier,
    write_spec,
)
from tests.gateway.s3server import CREDENTIALS, moto_s3

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

BUCKET = "models"
X = synthetic(5, seed=8)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with moto_s3(tmp_path_factory.mktemp("moto"), BUCKET) as server:
        yield server


def upload(client: Any, key: str, model: Any) -> None:
    buffer = io.BytesIO()
    data = model_bytes(model)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    client.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, s3: tuple[str, Any]
) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    url, client = s3
    models = {"Houston_TX.tar.gz": train_classifier(1), "tx/Austin.tar.gz": train_classifier(2)}
    for key, model in models.items():
        upload(client, f"houses/{key}", model)
    root = tmp_path_factory.mktemp("mme-s3")
    spec = write_spec(
        root,
        "houses",
        "Serial",
        {
            "multi": {
                "framework": "sklearn",
                "mode": "MultiModel",
                "model_data": f"s3://{BUCKET}/houses/",
                "environment": {"TANDEM_SKLEARN_METHOD": "predict_proba"},
            }
        },
    )
    with gateway(root, spec, env={**CREDENTIALS, "TANDEM_S3_ENDPOINT_URL": url}) as (gw, _):
        yield gw, sagemaker_client(gw), models


def invoke(client: Any, target: str) -> list[Any]:
    answer = client.invoke_endpoint(
        EndpointName="houses", TargetModel=target, ContentType="text/csv", Body=csv_body(X)
    )
    return predictions(answer["Body"].read())


def test_cold_and_warm_from_s3(site: tuple[str, Any, dict[str, Any]]) -> None:
    url, client, models = site
    for target in ("Houston_TX.tar.gz", "tx/Austin.tar.gz", "Houston_TX.tar.gz"):
        assert invoke(client, target) == models[target].predict_proba(X).tolist()
    assert metric(url, "tandem_model_downloading_seconds_count", container="multi") == 2
    assert metric(url, "tandem_model_cache_hits_total", container="multi") == 1
    assert set(loaded(url, "houses", "multi")) == {"Houston_TX.tar.gz", "tx/Austin.tar.gz"}


def test_twenty_concurrent_first_requests_share_one_download_and_load(
    site: tuple[str, Any, dict[str, Any]], s3: tuple[str, Any], tmp_path: Path
) -> None:
    url, client, _ = site
    crowd = train_classifier(6)
    # A load of a second: the 20 concurrent first requests for it surely overlap.
    archive = pack(tmp_path / "crowd.tar.gz", crowd, code=SLOW_MODEL_FN.format(seconds=1))
    s3[1].put_object(Bucket=BUCKET, Key="houses/crowd.tar.gz", Body=archive.read_bytes())
    growth = {
        "tandem_model_downloading_seconds_count": 1,
        "tandem_model_loading_seconds_count": 1,
        "tandem_model_cache_misses_total": 20,
        "tandem_model_cache_hits_total": 0,
    }
    before = {name: metric(url, name, container="multi") for name in growth}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: invoke(client, "crowd.tar.gz"), range(20)))
    assert answers == [crowd.predict_proba(X).tolist()] * 20
    after = {name: metric(url, name, container="multi") for name in growth}
    assert {name: after[name] - before[name] for name in growth} == growth


def test_an_object_uploaded_after_start_is_served(
    site: tuple[str, Any, dict[str, Any]], s3: tuple[str, Any]
) -> None:
    _, client, _ = site
    with pytest.raises(client.exceptions.ValidationError, match="no model at s3://models/houses/"):
        invoke(client, "Dallas_TX.tar.gz")
    dallas = train_classifier(5)
    upload(s3[1], "houses/Dallas_TX.tar.gz", dallas)
    assert invoke(client, "Dallas_TX.tar.gz") == dallas.predict_proba(X).tolist()


def test_a_malicious_object_is_refused(
    site: tuple[str, Any, dict[str, Any]], s3: tuple[str, Any], tmp_path: Path
) -> None:
    _, client, _ = site
    evil = write_tar(tmp_path / "evil.tar.gz", {"../../../escaped.txt": b"owned"})
    s3[1].put_object(Bucket=BUCKET, Key="houses/evil.tar.gz", Body=evil.read_bytes())
    with pytest.raises(client.exceptions.ValidationError, match="outside the model dir"):
        invoke(client, "evil.tar.gz")
    assert invoke(client, "Houston_TX.tar.gz")  # still serving
