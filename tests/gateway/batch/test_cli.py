"""``tandem batch`` as a user runs it: a process, exit codes, resume after a kill, ``--spec``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from gateway.batch import BatchConfig, run_batch
from gateway.batch.config import MB
from gateway.batch.progress import Tracker
from tests.gateway.batch.conftest import EXEC_PARAMS, toy, write_spec
from tests.gateway.batch.test_runs import expected_lines, rows, write_csv
from tests.support import PYTHON, ROOT, wait_until

pytestmark = pytest.mark.slow

BATCH = [PYTHON, "-m", "gateway", "batch"]
CSV = [
    "--content-type",
    "text/csv",
    "--accept",
    "text/csv",
    "--split-type",
    "Line",
    "--assemble-with",
    "Line",
]


#: What only the plain tracker prints (the final summary has records/s but no ETA).
PLAIN_PROGRESS = re.compile(r"^batch: [\d,]+ records, .* MB, .* records/s, ETA \S+, ", re.M)


def batch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BATCH, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_resume_after_an_interrupted_run(gateway_url: str, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    files = {f"f{i}.csv": rows(10, seed=i) for i in range(8)}
    for name, data in files.items():
        write_csv(src / name, data)
    args = [
        "--endpoint-url",
        gateway_url,
        "--endpoint",
        "toy-slow",
        "--input",
        f"file://{src}",
        "--output",
        str(out),
        *CSV,
    ]

    # toy-slow takes 0.15 s a request: kill the run hard once some files are done.
    proc = subprocess.Popen(
        [*BATCH, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(list(out.glob("*.out"))) >= 2, timeout=60, what="two outputs")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = {p.name for p in out.glob("*.out")}
    for name in done:  # whatever exists is whole: outputs appear only complete
        assert (out / name).read_text().splitlines() == expected_lines(files[name[:-4]])

    result = batch(*args)
    assert result.returncode == 0, result.stderr
    assert f"{len(files) - len(done)} file(s) done, {len(done)} skipped" in result.stderr
    # stderr is no terminal: plain progress lines (how often is test_progress.py's business).
    assert PLAIN_PROGRESS.search(result.stderr), result.stderr
    for name, data in files.items():
        assert (out / f"{name}.out").read_text().splitlines() == expected_lines(data)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.out" for n in files)

    again = batch(*args, "--overwrite")
    assert again.returncode == 0 and f"{len(files)} file(s) done, 0 skipped" in again.stderr


def test_exit_codes_tell_failed_files_from_bad_settings(gateway_url: str, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in" / "bad.csv", [[1, 2], ["oops", 3]])
    common = ["--endpoint-url", gateway_url, "--endpoint", "toy", "--input", str(src)]
    failed = batch(*common, "--output", str(tmp_path / "out"), *CSV)
    assert failed.returncode == 1
    assert "FAILED" in failed.stderr and "record 2 (line 2)" in failed.stderr
    assert "_failures.json" in failed.stderr

    invalid = batch(*common, "--output", str(tmp_path / "o2"), "--max-payload-mb", "500")
    assert invalid.returncode == 2
    assert "max_payload_mb: Input should be less than or equal to 100" in invalid.stderr

    inside = batch(*common[:-2], "--input", str(tmp_path), "--output", str(tmp_path / "o3"))
    assert inside.returncode == 2 and "must not be inside input" in inside.stderr


def test_spec_mode_starts_the_endpoint_and_stops_it_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_STATE_DIR", str(tmp_path / "state"))
    # The container takes 20 MB requests: the gateway started for the job must take them too.
    params = {**EXEC_PARAMS, "MaxPayloadInMB": 20}
    container = toy(CONTRACT_EXEC_PARAMS=json.dumps(params))
    spec = write_spec(tmp_path, "toy", {"containers": [container]})
    data = rows(1000, width=40) * 40
    src = write_csv(tmp_path / "in" / "s.csv", data)
    assert 6 * MB < src.stat().st_size < 20 * MB  # one request, over a gateway's default 6 MiB
    config = BatchConfig.build(
        input=str(src),
        output=str(tmp_path / "out"),
        spec=spec,
        content_type="text/csv",
        accept="text/csv",
        split_type="Line",
        assemble_with="Line",
    )
    report = run_batch(config, tracker=Tracker())
    assert report.ok, report.summary()
    assert (tmp_path / "out" / "s.csv.out").read_text().splitlines() == expected_lines(data)
    # The container's own /execution-parameters were read.
    assert report.plan is not None and report.plan.sources["MaxConcurrentTransforms"] == "container"
    assert report.plan.max_payload_bytes == 20 * MB
    # Stopped after: the embedded gateway released its state folder's lock.
    from gateway.state.lock import state_lock

    with state_lock(tmp_path / "state" / "batch"):
        pass
