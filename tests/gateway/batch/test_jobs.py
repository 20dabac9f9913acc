"""Transform jobs through the SageMaker API: a real ``tandem serve`` runs them in the background.

The model is the standard-library contract server's ``sum`` model, created with ``CreateModel``
(``TANDEM_COMMAND``); the jobs are driven by the real boto3 ``sagemaker`` client and its
``transform_job_completed_or_stopped`` waiter; the gateway is a real process, stopped with SIGTERM
or killed with SIGKILL mid-job and started again on the same state folder.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from gateway.state import FILENAME, JobStatus, StateStore
from tests.gateway.batch.test_runs import rows, write_csv
from tests.gateway.contract_server import predict
from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow

CONFIG = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
WAIT = {"Delay": 0.2, "MaxAttempts": 900}
CSV = {"ContentType": "text/csv", "SplitType": "Line"}


@dataclass
class Gateway:
    url: str
    state: Path
    proc: Any
    sm: Any

    @property
    def data(self) -> Path:
        """A folder beside the state folder, under the roots job data may come from (the state
        folder itself is no location's)."""
        return self.state.parent / "data"

    def describe(self, job: str) -> dict[str, Any]:
        """``DescribeTransformJob`` as raw JSON, with Tandem's ``Progress`` (boto3 drops it)."""
        answer = httpx.post(
            self.url,
            json={"TransformJobName": job},
            headers={
                "X-Amz-Target": "SageMaker.DescribeTransformJob",
                "Content-Type": "application/x-amz-json-1.1",
            },
            timeout=30,
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def wait(self, job: str) -> dict[str, Any]:
        self.sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=job, WaiterConfig=WAIT
        )
        return self.describe(job)


@contextmanager
def gateway(
    state: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    env = {"TANDEM_MODEL_ROOTS": f"{state.parent},s3://", **(env or {})}
    with running(args, url=url, log=log, env=env, timeout=60) as proc:
        sm = boto3.client("sagemaker", endpoint_url=url, config=CONFIG, **KEYS)
        yield Gateway(url, state, proc, sm)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with gateway(tmp_path / "state", free_port(), tmp_path / "gateway.log") as running_gateway:
        yield running_gateway


def create_model(sm: Any, name: str, hostname: str = "toy", **env: str) -> None:
    environment = {"TANDEM_COMMAND": f"{PYTHON} {CONTRACT_SERVER}", "CONTRACT_MODE": "sum", **env}
    sm.create_model(
        ModelName=name, PrimaryContainer={"ContainerHostname": hostname, "Environment": environment}
    )


def create_job(sm: Any, name: str, model: str, src: str, out: str, **extra: Any) -> None:
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": src}},
            **CSV,
        },
        TransformOutput={"S3OutputPath": out, "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **extra,
    )


def job_processes(state: Path) -> list[psutil.Process]:
    """The container processes the gateway on ``state`` started for transform jobs."""
    wanted = str((state / "jobs").resolve())
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TANDEM_STATE") == wanted:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def sums(data: list[list[Any]]) -> list[str]:
    return [str(predict(r)) for r in data]


def outputs(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden partial outputs included, relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_folder_job_with_filters_and_a_join_completes_with_its_progress(gw: Gateway) -> None:
    files = {
        "a.csv": [[f"a{i}", *r] for i, r in enumerate(rows(50, seed=1, width=3))],
        "sub/b.csv": [[f"b{i}", *r] for i, r in enumerate(rows(30, seed=2, width=3))],
    }
    for rel, data in files.items():
        write_csv(gw.data / "in" / rel, data)
    create_model(gw.sm, "summer")
    create_job(
        gw.sm,
        "scored",
        "summer",
        (gw.data / "in").as_uri(),  # file://, and a plain path for the output
        str(gw.data / "out"),
        BatchStrategy="MultiRecord",
        MaxConcurrentTransforms=2,
        MaxPayloadInMB=1,
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        Environment={"CONTRACT_SCALE": "10"},  # the job's own, added to the model's
    )

    done = gw.wait("scored")
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    assert done["TransformEndTime"] >= done["TransformStartTime"] >= done["CreationTime"]
    for rel, data in files.items():
        lines = (gw.data / "out" / f"{rel}.out").read_text().splitlines()
        assert lines == [f"{r[0]},{predict(r[1:], 10)}" for r in data]
    assert outputs(gw.data / "out") == ["a.csv.out", "sub/b.csv.out"]
    progress = done["Progress"]
    assert progress["Stage"] == "Done" and progress["Records"] == 80
    assert progress["FilesDone"] == 2 and progress["FilesFailed"] == 0
    assert progress["BytesDone"] == progress["BytesTotal"] > 0

    listed = gw.sm.list_transform_jobs(StatusEquals="Completed")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == ["scored"]
    # The job's containers were never one of the gateway's endpoints, and are gone.
    assert httpx.get(f"{gw.url}/endpoints", timeout=10).json() == {"Endpoints": []}
    assert job_processes(gw.state) == []
    logs = gw.state / "jobs" / "endpoints" / "scored" / "scored" / "toy"
    assert (logs / "container.log").is_file()


def test_stop_ends_a_slow_job_stopped_with_its_containers_and_no_outputs(gw: Gateway) -> None:
    write_csv(gw.data / "in" / "slow.csv", rows(300, seed=3))
    create_model(gw.sm, "slow", CONTRACT_SLEEP="0.1")
    create_job(
        gw.sm,
        "slow-job",
        "slow",
        str(gw.data / "in"),
        str(gw.data / "out"),
        BatchStrategy="SingleRecord",
        MaxConcurrentTransforms=1,
    )

    def transforming() -> dict[str, Any] | None:
        progress: dict[str, Any] = gw.describe("slow-job").get("Progress", {})
        return progress if progress.get("Stage") == "Transforming" and progress["Records"] else None

    seen = wait_until(transforming, timeout=60, what="records done")
    assert 0 < seen["BytesDone"] < seen["BytesTotal"]
    assert gw.describe("slow-job")["TransformJobStatus"] == "InProgress"
    gw.sm.stop_transform_job(TransformJobName="slow-job")

    stopped = gw.wait("slow-job")
    assert stopped["TransformJobStatus"] == "Stopped" and "FailureReason" not in stopped
    assert "TransformEndTime" in stopped
    assert job_processes(gw.state) == []
    assert outputs(gw.data / "out") == []  # no output, and no partial one
    with pytest.raises(ClientError) as err:
        gw.sm.stop_transform_job(TransformJobName="slow-job")
    assert "already finished (Stopped)" in err.value.response["Error"]["Message"]


def test_a_container_that_cannot_start_fails_the_job_naming_it(gw: Gateway) -> None:
    write_csv(gw.data / "in" / "x.csv", rows(5))
    crash = f"{PYTHON} -c \"print('no model here'); exit(3)\""
    gw.sm.create_model(
        ModelName="broken",
        PrimaryContainer={"ContainerHostname": "crashy", "Environment": {"TANDEM_COMMAND": crash}},
    )
    create_job(gw.sm, "doomed", "broken", str(gw.data / "in"), str(gw.data / "out"))

    with pytest.raises(WaiterError):
        gw.wait("doomed")
    failed = gw.sm.describe_transform_job(TransformJobName="doomed")
    assert failed["TransformJobStatus"] == "Failed"
    reason = failed["FailureReason"]
    assert "doomed/crashy" in reason and "exited with code 3" in reason
    assert "no model here" in reason  # the container's last log lines
    assert job_processes(gw.state) == []


def test_a_poisoned_file_fails_the_job_naming_it_and_the_others_are_written(
    gw: Gateway,
) -> None:
    good = rows(20, seed=4)
    write_csv(gw.data / "in" / "good.csv", good)
    write_csv(gw.data / "in" / "poisoned.csv", [[1, 2], ["x", "y"]])
    create_model(gw.sm, "summer")
    create_job(gw.sm, "partly", "summer", str(gw.data / "in"), str(gw.data / "out"))

    with pytest.raises(WaiterError):
        gw.wait("partly")
    failed = gw.describe("partly")
    assert failed["TransformJobStatus"] == "Failed"
    assert "1 of 2 input file(s) failed" in failed["FailureReason"]
    assert "poisoned.csv" in failed["FailureReason"] and "_failures.json" in failed["FailureReason"]
    assert (gw.data / "out" / "good.csv.out").read_text().splitlines() == sums(good)
    report = json.loads((gw.data / "out" / "_failures.json").read_text())
    assert report["failures"][0]["record"] == 2
    assert failed["Progress"]["FilesDone"] == 1 and failed["Progress"]["FilesFailed"] == 1


def test_settings_the_batch_runner_refuses_are_refused_by_the_call(gw: Gateway) -> None:
    (gw.data / "in").mkdir(parents=True)
    create_model(gw.sm, "summer")
    with pytest.raises(ClientError) as err:
        gw.sm.create_transform_job(
            TransformJobName="nope",
            ModelName="summer",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(gw.data / "in")}
                },
                "ContentType": "application/octet-stream",
            },
            TransformOutput={"S3OutputPath": str(gw.data / "out")},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
            DataProcessing={"JoinSource": "Input"},
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    message = err.value.response["Error"]["Message"]
    assert "DataProcessing.JoinSource" in message and "TransformInput.ContentType" in message
    assert gw.sm.list_transform_jobs()["TransformJobSummaries"] == []


def test_a_job_survives_sigterm_and_sigkill_of_the_gateway_and_writes_each_output_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    files = {f"part-{i}.csv": rows(20, seed=10 + i) for i in range(8)}
    for rel, data in files.items():
        write_csv(tmp_path / "data" / "in" / rel, data)
    out = tmp_path / "data" / "out"

    def done_files() -> list[Path]:
        return sorted(out.glob("*.out"))

    # Each start takes a new port: another process may take one that no gateway holds.
    with gateway(state, free_port(), tmp_path / "first.log") as first:
        create_model(first.sm, "slow", CONTRACT_SLEEP="0.05")
        create_job(
            first.sm,
            "long",
            "slow",
            str(tmp_path / "data" / "in"),
            str(out),
            BatchStrategy="SingleRecord",
            MaxConcurrentTransforms=1,
        )
        wait_until(lambda: len(done_files()) >= 1, timeout=60, what="a first output")
        first.proc.send_signal(signal.SIGTERM)  # an orderly stop: the job is not Failed
        assert first.proc.wait(timeout=60) == 0
    store = StateStore(state / FILENAME)
    try:
        record = store.get_job("long")
        assert record is not None and record.status is JobStatus.IN_PROGRESS
        assert record.failure_reason is None
    finally:
        store.close()
    assert job_processes(state) == []
    assert len(done_files()) < len(files), "the job ended before the gateway stopped"

    with gateway(state, free_port(), tmp_path / "second.log") as second:
        count = len(done_files())
        wait_until(lambda: len(done_files()) > count, timeout=60, what="the job resumed")
        before = {p.name: os.stat(p) for p in done_files()}
        second.proc.kill()  # SIGKILL, the gateway alone: its containers die with it
        second.proc.wait()
    assert len(before) < len(files), "the job ended before the gateway was killed"

    with gateway(state, free_port(), tmp_path / "third.log") as third:
        done = third.wait("long")
        assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
        assert done["Progress"]["FilesSkipped"] >= len(before)
        assert done["Progress"]["FilesSkipped"] + done["Progress"]["FilesDone"] == len(files)
    assert outputs(out) == sorted(f"{rel}.out" for rel in files)  # no partial one left
    for rel, data in files.items():
        assert (out / f"{rel}.out").read_text().splitlines() == sums(data)
    for name, stat in before.items():  # written once: not rewritten after the restarts
        now = os.stat(out / name)
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert wait_until(lambda: not job_processes(state), timeout=30, what="no leftovers")


def test_a_job_over_s3(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    with moto_s3(tmp_path, "jobs-bucket") as (s3_url, s3):
        files = {"in/a.csv": rows(25, seed=5), "in/deep/b.csv": rows(15, seed=6)}
        for key, data in files.items():
            body = "".join(",".join(map(str, r)) + "\n" for r in data).encode()
            s3.put_object(Bucket="jobs-bucket", Key=key, Body=body)
        env = {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3_url}
        with gateway(tmp_path / "state", free_port(), tmp_path / "gateway.log", env) as gw:
            create_model(gw.sm, "summer")
            create_job(gw.sm, "from-s3", "summer", "s3://jobs-bucket/in/", "s3://jobs-bucket/out")
            done = gw.wait("from-s3")
            assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
        listed = s3.list_objects_v2(Bucket="jobs-bucket", Prefix="out/")["Contents"]
        assert sorted(o["Key"] for o in listed) == ["out/a.csv.out", "out/deep/b.csv.out"]
        for key, data in files.items():
            out_key = "out/" + key.removeprefix("in/") + ".out"
            body = s3.get_object(Bucket="jobs-bucket", Key=out_key)["Body"].read()
            assert body.decode().splitlines() == sums(data)
