"""The capture writer on its own: records in SageMaker's shape, in a folder and on a real S3
protocol server, a store that is down, a full buffer, a flush at close."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.capture import CaptureStoreError, CaptureWriter, check_destination
from gateway.capture.records import capture_line, capture_record
from pipelines.spec import DataCaptureSpec
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON, free_port, running, wait_for_ping


def spec(destination: str, **fields: Any) -> DataCaptureSpec:
    return DataCaptureSpec(destination=destination, **fields)


def offer(writer: CaptureWriter, n: int, variant: str = "AllTraffic") -> None:
    for i in range(n):
        writer.offer(
            variant,
            f"1,{i}".encode(),
            "text/csv",
            b"\x00\x01",
            "application/octet-stream",
            event_id=f"event-{i}",
            inference_id=f"inference-{i}",
        )


def lines_under(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted(folder.rglob("*.jsonl")) for line in
            p.read_text().splitlines()]  # fmt: skip


def test_records_in_a_folder_have_sagemakers_shape(tmp_path: Path) -> None:
    async def main() -> None:
        writer = CaptureWriter("ep", spec(str(tmp_path)), flush_interval=0.05)
        writer.start()
        offer(writer, 3)
        offer(writer, 2, variant="B")
        await writer.aclose()

    asyncio.run(main())
    files = sorted(tmp_path.rglob("*.jsonl"))
    assert {p.relative_to(tmp_path).parts[:2] for p in files} == {("ep", "AllTraffic"), ("ep", "B")}
    # endpoint/variant/yyyy/mm/dd/hh/file
    assert all(len(p.relative_to(tmp_path).parts) == 7 for p in files)
    records = lines_under(tmp_path)
    assert len(records) == 5
    first = next(r for r in records if r["eventMetadata"]["eventId"] == "event-0")
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"]["inferenceId"] == "inference-0"
    assert first["eventMetadata"]["inferenceTime"].endswith("Z")
    request = first["captureData"]["endpointInput"]
    assert request == {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,0",
                       "encoding": "CSV"}  # fmt: skip
    answer = first["captureData"]["endpointOutput"]
    assert answer["mode"] == "OUTPUT" and answer["encoding"] == "BASE64"
    assert base64.b64decode(answer["data"]) == b"\x00\x01"
    assert not list(tmp_path.rglob("*.partial")), "no half-written file is left"


def test_only_the_options_asked_for_are_kept(tmp_path: Path) -> None:
    async def main() -> None:
        writer = CaptureWriter("ep", spec(str(tmp_path), capture_options=["Output"]))
        offer(writer, 1)
        await writer.aclose()

    asyncio.run(main())
    (record,) = lines_under(tmp_path)
    assert set(record["captureData"]) == {"endpointOutput"}


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    async def main() -> CaptureWriter:
        writer = CaptureWriter("ep", spec(str(tmp_path)), buffer=10)
        offer(writer, 25)
        await writer.aclose()
        return writer

    writer = asyncio.run(main())
    assert writer.counts[("AllTraffic", "captured")] == 10
    assert writer.counts[("AllTraffic", "dropped")] == 15
    assert writer.counts[("AllTraffic", "written")] == 10
    assert len(lines_under(tmp_path)) == 10


def test_sampling(tmp_path: Path) -> None:
    none = CaptureWriter("ep", spec(str(tmp_path), initial_sampling_percentage=0))
    assert not any(none.sampled() for _ in range(1000))
    off = CaptureWriter("ep", spec(str(tmp_path), enable_capture=False))
    assert not any(off.sampled() for _ in range(1000))
    half = CaptureWriter("ep", spec(str(tmp_path), initial_sampling_percentage=50))
    hits = sum(half.sampled() for _ in range(4000))
    assert 1700 < hits < 2300  # 4000 draws at 1/2: more than 9 sigmas either way


def test_on_s3_and_through_a_store_that_was_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    async def while_down() -> CaptureWriter:
        writer = CaptureWriter("ep", spec("s3://capture/prefix"), s3_endpoint_url=url)
        offer(writer, 4)
        loop = asyncio.get_running_loop()
        started = loop.time()
        offer(writer, 1)  # offer never waits on the store
        assert loop.time() - started < 0.5
        await writer.flush(force=True)
        return writer

    writer = asyncio.run(while_down())
    assert writer.counts[("AllTraffic", "failed")] == 5
    assert writer.counts[("AllTraffic", "written")] == 0

    args = [PYTHON, "-m", "moto.server", "-p", str(port)]
    with running(args, log=tmp_path / "moto.log"):
        wait_for_ping(url, path="/moto-api/", timeout=60)
        import boto3

        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket="capture")

        async def back_up() -> None:
            offer(writer, 2)
            await writer.aclose()

        asyncio.run(back_up())
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="capture")["Contents"]]
        assert all(k.startswith("prefix/ep/AllTraffic/") and k.endswith(".jsonl") for k in keys)
        records = [
            json.loads(line)
            for k in keys
            for line in s3.get_object(Bucket="capture", Key=k)["Body"].read().splitlines()
        ]
    assert len(records) == 7, "the records kept while the store was down are written after"
    assert writer.counts[("AllTraffic", "written")] == 7


def test_check_destination(tmp_path: Path) -> None:
    check_destination(str(tmp_path / "new"))
    assert not [p for p in (tmp_path / "new").iterdir() if p.is_file()]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CaptureStoreError, match="cannot be written"):
        check_destination(str(blocker / "below"))
    with pytest.raises(CaptureStoreError, match="s3://, file://"):
        check_destination("gs://bucket/x")


def test_moto_bucket_that_does_not_exist_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with moto_s3(tmp_path, "real") as (url, _):
        check_destination("s3://real/capture", s3_endpoint_url=url)
        with pytest.raises(CaptureStoreError, match="cannot be written"):
            check_destination("s3://missing/capture", s3_endpoint_url=url)


def test_a_full_batch_wakes_the_writer_before_its_interval(tmp_path: Path) -> None:
    async def main() -> list[dict[str, Any]]:
        writer = CaptureWriter("ep", spec(str(tmp_path)), batch=5, flush_interval=3600)
        writer.start()
        offer(writer, 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not (found := lines_under(tmp_path)) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await writer.aclose()
        return found

    assert len(asyncio.run(main())) == 5, "written long before the hour-long interval"


def test_a_folder_that_cannot_be_written_then_can(tmp_path: Path) -> None:
    blocker = tmp_path / "capture"
    blocker.write_text("a file where the folder should be")

    async def main() -> CaptureWriter:
        writer = CaptureWriter("ep", spec(str(blocker)), buffer=8, flush_interval=0.01)
        writer.start()
        offer(writer, 3)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not writer.counts[("AllTraffic", "failed")] and loop.time() < deadline:
            await asyncio.sleep(0.01)
        offer(writer, 10)  # while it fails: kept in the buffer up to its size, then dropped
        assert writer.counts[("AllTraffic", "failed")] == 3
        blocker.unlink()  # the store comes back
        await writer.aclose()
        return writer

    writer = asyncio.run(main())
    # The 3 that failed wait as an object; the buffer (8) took 8 of the next 10.
    assert writer.counts[("AllTraffic", "dropped")] == 2
    assert writer.counts[("AllTraffic", "written")] == 11
    records = lines_under(blocker)
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == sorted(
        [f"inference-{i}" for i in range(3)] + [f"inference-{i}" for i in range(8)]
    )


@pytest.mark.parametrize("when", [1764715200.0, 1764715200.9994, 1764715201.123456])
def test_the_written_line_is_the_record(when: float) -> None:
    fields: dict[str, Any] = {
        "when": when,
        "event_id": 'quote " and \u00e9',
        "request": ("é,1".encode(), "text/csv; charset=utf-8"),
        "response": (b"\xff\xfe", "text/csv"),  # not UTF-8: BASE64 although CSV
        "csv_types": ["text/csv"],
        "json_types": [],
        "inference_id": "order-42",
        "target_model": "model-a.tar.gz",
    }
    record = capture_record(**fields)
    assert json.loads(capture_line(**fields)) == record
    assert record["captureData"]["endpointInput"]["data"] == "é,1"
    assert record["captureData"]["endpointOutput"]["encoding"] == "BASE64"
    assert record["eventMetadata"]["targetModel"] == "model-a.tar.gz"
    fewer = json.loads(capture_line(**{**fields, "inference_id": None, "request": None}))
    assert set(fewer["captureData"]) == {"endpointOutput"}
    assert "inferenceId" not in fewer["eventMetadata"]
    assert fewer == capture_record(**{**fields, "inference_id": None, "request": None})
