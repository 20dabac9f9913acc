"""Model store prefixes, downloads through the shared fetch, and the S3 endpoint settings."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.multimodel.model_store import MissingModel, ModelStore, StoreError, StoreUnavailable
from gateway.settings import GatewaySettings
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import free_port

needs_s3 = pytest.mark.skipif(
    not (importlib.util.find_spec("s3fs") and importlib.util.find_spec("moto")),
    reason="needs s3fs and moto",
)


def test_prefix_kinds(tmp_path: Path) -> None:
    s3 = ModelStore("s3://bucket/houses/")
    assert (
        not s3.local and s3.location("tx/Houston.tar.gz") == "s3://bucket/houses/tx/Houston.tar.gz"
    )
    assert ModelStore("s3://bucket").location("a.tar.gz") == "s3://bucket/a.tar.gz"
    local = ModelStore(f"file://{tmp_path}")
    assert local.local and local.root == tmp_path.resolve()
    assert ModelStore(str(tmp_path)).root == tmp_path.resolve()


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("gs://bucket/x/", "unsupported"),
        ("s3:///x", "needs a bucket"),
        ("file://otherhost/x/", "must name a local path"),
    ],
)
def test_bad_prefixes(prefix: str, why: str) -> None:
    with pytest.raises(StoreError, match=why):
        ModelStore(prefix)


@pytest.mark.parametrize(
    "env", ["TANDEM_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
)
def test_s3_endpoint_from_the_usual_variables(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TANDEM_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env, "http://127.0.0.1:9000")
    assert GatewaySettings().s3_endpoint_url == "http://127.0.0.1:9000"


def test_tandem_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws")
    monkeypatch.setenv("TANDEM_S3_ENDPOINT_URL", "http://tandem")
    assert GatewaySettings().s3_endpoint_url == "http://tandem"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with moto_s3(tmp_path_factory.mktemp("moto"), "store") as server:
        yield server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@needs_s3
@pytest.mark.usefixtures("aws")
def test_s3_downloads_and_a_missing_model(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    client.put_object(Bucket="store", Key="houses/tx/Austin.tar.gz", Body=b"an archive")
    store = ModelStore("s3://store/houses/", s3_endpoint_url=url)
    assert store.download("tx/Austin.tar.gz", tmp_path / "a") == len(b"an archive")
    assert (tmp_path / "a").read_bytes() == b"an archive"
    with pytest.raises(MissingModel, match=r"^no model at s3://store/houses/Dallas\.tar\.gz$"):
        store.download("Dallas.tar.gz", tmp_path / "b")
    with pytest.raises(MissingModel, match=r"^no model at s3://store/houses/tx$"):
        store.download("tx", tmp_path / "c")  # a prefix is not a model in a store


@needs_s3
@pytest.mark.slow  # s3fs retries before it gives up
@pytest.mark.usefixtures("aws")
def test_an_unreachable_store_is_worth_a_retry(tmp_path: Path) -> None:
    store = ModelStore("s3://store/houses/", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(
        StoreUnavailable, match=r"^cannot download s3://store/houses/a\.tar\.gz: cannot reach"
    ):
        store.download("a.tar.gz", tmp_path / "a")
