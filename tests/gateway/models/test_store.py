"""Model store prefixes and the S3 endpoint settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.models.store import ModelStore, StoreError
from gateway.settings import GatewaySettings


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
    ("prefix", "why"), [("gs://bucket/x/", "unsupported"), ("s3:///x", "needs a bucket")]
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
