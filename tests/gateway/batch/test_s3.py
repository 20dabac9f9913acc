"""Inputs and outputs on a real S3-protocol server (moto's, as a process on a free port)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.batch import BatchConfig, run_batch
from gateway.batch.progress import Tracker
from tests.gateway.batch.test_runs import expected_lines, rows

pytestmark = pytest.mark.slow

s3fs = pytest.importorskip("s3fs")


@pytest.fixture
def s3(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # botocore (and so s3fs) honours AWS_ENDPOINT_URL_S3: no Tandem-specific setting is needed.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    yield fs


def csv_bytes(data: list[list[int]]) -> bytes:
    return "".join(",".join(map(str, r)) + "\n" for r in data).encode()


def test_s3_input_and_output(gateway_url: str, s3: Any, tmp_path: Path) -> None:
    fs: Any = s3
    fs.mkdir("batch-bucket")
    files = {"in/a.csv": rows(30, seed=1), "in/sub/b.csv": rows(40, seed=2)}
    for key, data in files.items():
        fs.pipe(f"batch-bucket/{key}", csv_bytes(data))
    fs.pipe("batch-bucket/in/sub/poisoned.csv", b"1,2\nx,y\n")

    config = BatchConfig.build(
        input="s3://batch-bucket/in/",
        output="s3://batch-bucket/out",
        endpoint_url=gateway_url,
        endpoint="toy",
        content_type="text/csv",
        accept="text/csv",
        split_type="Line",
        assemble_with="Line",
    )
    report = run_batch(config, tracker=Tracker())

    assert sorted(report.succeeded) == [
        "s3://batch-bucket/out/a.csv.out",
        "s3://batch-bucket/out/sub/b.csv.out",
    ]
    (failure,) = report.failures
    assert failure.input == "s3://batch-bucket/in/sub/poisoned.csv" and failure.record == 2
    for key, data in files.items():
        out = fs.cat(f"batch-bucket/out/{key.removeprefix('in/')}.out")
        assert out.decode().splitlines() == expected_lines(data)
    assert sorted(fs.find("batch-bucket/out")) == [
        "batch-bucket/out/_failures.json",
        "batch-bucket/out/a.csv.out",
        "batch-bucket/out/sub/b.csv.out",
    ]
    saved = json.loads(fs.cat("batch-bucket/out/_failures.json"))
    assert saved["failures"][0]["record"] == 2

    rerun = run_batch(config, tracker=Tracker())
    assert len(rerun.skipped) == 2 and len(rerun.failures) == 1
