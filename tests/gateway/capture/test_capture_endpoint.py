"""Data capture on a real ``tandem serve``, configured through boto3: records in a folder and on
a real S3 protocol server, the inference id kept, a store that goes down failing no request."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import clients, container, wait_status
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow


@contextmanager
def gateway(tmp_path: Path, **env: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(tmp_path / "s"), "--port",
            str(port)]  # fmt: skip
    roots = {"TANDEM_MODEL_ROOTS": f"{tmp_path},s3://", **CREDENTIALS, **env}
    with running(args, url=url, env=roots, log=tmp_path / "gateway.log", timeout=60):
        yield url


def tandem(*args: str) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def captured(control: Any, name: str, destination: str, **capture: Any) -> None:
    control.create_model(ModelName=name, PrimaryContainer=container("|ok"))
    control.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name}],
        DataCaptureConfig={
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
            **capture,
        },
    )
    control.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_status(control, name, "InService")


def send(runtime: Any, name: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        answer = runtime.invoke_endpoint(
            EndpointName=name, Body=f"{i},1".encode(), ContentType="text/csv",
            InferenceId=f"id-{i}",
        )  # fmt: skip
        assert answer["Body"].read() == f"{i},1|ok".encode()


def test_capture_to_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "capture"
    with gateway(tmp_path) as url:
        control, runtime = clients(url)
        captured(control, "cap", str(folder))
        send(runtime, "cap", 20)
        summary = control.describe_endpoint(EndpointName="cap")["DataCaptureConfig"]
        assert summary["CaptureStatus"] == "Started" and summary["CurrentSamplingPercentage"] == 100

        def records() -> list[dict[str, Any]] | None:
            found = [json.loads(line) for p in folder.rglob("*.jsonl")
                     for line in p.read_text().splitlines()]  # fmt: skip
            return found if len(found) >= 20 else None

        got = wait_until(records, timeout=30, what="20 capture records")
        shown = tandem("capture", "tail", "cap", "--url", url, "-n", "5")
        tailed = [json.loads(line) for line in shown.splitlines()]
        assert [r["eventMetadata"]["inferenceId"] for r in tailed] == [
            f"id-{i}" for i in range(15, 20)
        ]
    offline = tandem("capture", "tail", "cap", "--destination", str(folder), "-n", "3")
    assert len(offline.splitlines()) == 3
    assert {r["eventMetadata"]["inferenceId"] for r in got} == {f"id-{i}" for i in range(20)}
    one = next(r for r in got if r["eventMetadata"]["inferenceId"] == "id-3")
    assert one["captureData"]["endpointInput"]["data"] == "3,1"
    assert one["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert one["captureData"]["endpointOutput"]["data"] == "3,1|ok"
    assert all(p.relative_to(folder).parts[:2] == ("cap", "AllTraffic")
               for p in folder.rglob("*.jsonl"))  # fmt: skip


def test_capture_to_s3_and_a_store_that_goes_down(tmp_path: Path) -> None:
    with ExitStack() as store, ExitStack() as serving:
        s3_url, s3 = store.enter_context(moto_s3(tmp_path, "bucket"))
        url = serving.enter_context(gateway(tmp_path, TANDEM_S3_ENDPOINT_URL=s3_url))
        control, runtime = clients(url)
        with pytest.raises(ClientError) as info:
            captured(control, "nowhere", "s3://no-such-bucket/capture")
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert "DataCaptureConfig.DestinationS3Uri" in info.value.response["Error"]["Message"]

        captured(control, "cap", "s3://bucket/capture")
        send(runtime, "cap", 10)

        def records() -> int | None:
            listed = s3.list_objects_v2(Bucket="bucket", Prefix="capture/cap/AllTraffic/")
            total = sum(
                len(s3.get_object(Bucket="bucket", Key=o["Key"])["Body"].read().splitlines())
                for o in listed.get("Contents", [])
            )
            return total if total >= 10 else None

        assert wait_until(records, timeout=30, what="records on S3") == 10

        store.close()  # the S3 server goes down under a serving gateway
        send(runtime, "cap", 50, start=10)  # every request is answered, as before

        def failed() -> float | None:
            text = httpx.get(f"{url}/metrics").text
            for line in text.splitlines():
                if (
                    line.startswith("tandem_data_capture_records_total{")
                    and 'outcome="failed"' in line
                ):
                    return float(line.rsplit(" ", 1)[1]) or None
            return None

        assert wait_until(failed, timeout=60, what="capture writes counted as failed")
