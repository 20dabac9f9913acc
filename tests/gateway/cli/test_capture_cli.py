"""``tandem capture tail --destination`` as a real command, over a folder and the moto S3 server.

The files are laid out as the writer lays them out (``endpoint/variant/yyyy/mm/dd/hh/...``) with
records of known times, so the test can tell that the newest ones are printed, oldest first.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.capture.destination import Store
from gateway.capture.records import capture_record
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TANDEM_"))}


def tail(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "gateway", "capture", "tail", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, **env},
    )


def lay_out(store: Store, endpoint: str = "ep") -> None:
    """Records ``v-0`` .. ``v-5`` per variant, two files in two hours of two days."""
    for variant in ("AllTraffic", "Candidate"):
        for part, (day, hour) in enumerate(((1, 23), (2, 0))):
            lines = []
            for i in range(3):
                n = part * 3 + i
                when = datetime(2026, 12, day, hour, 5, n, tzinfo=UTC).timestamp()
                record = capture_record(
                    when=when,
                    event_id=f"event-{n}",
                    request=(f"{n},1".encode(), "text/csv"),
                    response=(b"\x00", "application/octet-stream"),
                    csv_types=["text/csv"],
                    json_types=[],
                    inference_id=f"{endpoint}:{variant}-{n}"
                    if endpoint != "ep"
                    else f"{variant}-{n}",
                )
                lines.append(json.dumps(record))
            key = f"{endpoint}/{variant}/2026/12/{day:02d}/{hour:02d}/05-00-000-{part}.jsonl"
            store.put(key, ("\n".join(lines) + "\n").encode())


def ids(out: str) -> list[str]:
    records: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    return [r["eventMetadata"]["inferenceId"] for r in records]


def test_tail_a_folder(tmp_path: Path) -> None:
    lay_out(Store(str(tmp_path)))
    lay_out(Store(str(tmp_path)), "ep2")  # a name that "ep" is a prefix of: not shown
    done = tail("ep", "--destination", str(tmp_path), "-n", "4", "--variant", "Candidate")
    assert done.returncode == 0, done.stderr
    assert ids(done.stdout) == [f"Candidate-{n}" for n in range(2, 6)], "across two files"
    first = json.loads(done.stdout.splitlines()[0])
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": "2,1", "encoding": "CSV",
    }  # fmt: skip
    both = tail("ep", "--destination", f"file://{tmp_path}", "-n", "20")
    assert both.returncode == 0, both.stderr
    assert sorted(ids(both.stdout)) == sorted(
        f"{v}-{n}" for v in ("AllTraffic", "Candidate") for n in range(6)
    )
    none = tail("other", "--destination", str(tmp_path))
    assert none.returncode == 0 and none.stdout == ""
    assert "no records" in none.stderr


def test_tail_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDENTIALS.items():  # for the Store below, in this process
        monkeypatch.setenv(key, value)
    with moto_s3(tmp_path, "bucket") as (url, _):
        lay_out(Store("s3://bucket/capture", s3_endpoint_url=url))
        lay_out(Store("s3://bucket/capture", s3_endpoint_url=url), "ep2")
        done = tail(
            "ep", "--destination", "s3://bucket/capture", "-n", "20",
            **CREDENTIALS, TANDEM_S3_ENDPOINT_URL=url,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(ids(done.stdout)) == sorted(
        f"{v}-{n}" for v in ("AllTraffic", "Candidate") for n in range(6)
    )
    assert set(ids(done.stdout)[-2:]) == {"AllTraffic-5", "Candidate-5"}, "the newest last"


def test_tail_says_what_is_wrong(tmp_path: Path) -> None:
    bad = tail("ep", "--destination", "gs://bucket/capture")
    assert bad.returncode == 2 and "s3://, file:// or a folder" in bad.stderr
    broken = tmp_path / "ep" / "AllTraffic" / "2026" / "12" / "02" / "22" / "00-00-000-x.jsonl"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json\n")
    done = tail("ep", "--destination", str(tmp_path))
    assert done.returncode == 2 and "is not JSON Lines" in done.stderr
    assert "Traceback" not in done.stderr
