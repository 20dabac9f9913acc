"""Real batch runs through a real gateway and real (toy) containers, with the Python API."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from gateway.batch import BatchConfig, BatchReport, run_batch
from gateway.batch.progress import Tracker
from tests.gateway.contract_server import predict

pytestmark = pytest.mark.slow


def rows(n: int, seed: int = 0, width: int = 4) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(-1000, 1000) for _ in range(width)] for _ in range(n)]


def write_csv(path: Path, data: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in data))
    return path


def expected_lines(data: list[list[Any]], scale: float = 1.0) -> list[str]:
    return [str(predict(r, scale)) for r in data]


def run(url: str, endpoint: str, src: Path | str, out: Path | str, **values: Any) -> BatchReport:
    config = BatchConfig.build(
        input=str(src), output=str(out), endpoint_url=url, endpoint=endpoint, **values
    )
    return run_batch(config, tracker=Tracker())


CSV_LINES = {"content_type": "text/csv", "accept": "text/csv", "split_type": "Line"}


def test_single_and_multi_record_write_the_same_lines_as_the_model(
    gateway_url: str, tmp_path: Path
) -> None:
    data = rows(300)
    src = write_csv(tmp_path / "in" / "data.csv", data)
    outputs = {}
    for strategy in ("SingleRecord", "MultiRecord"):
        out = tmp_path / strategy
        report = run(
            gateway_url, "toy", src, out, batch_strategy=strategy, assemble_with="Line", **CSV_LINES
        )
        assert report.ok and report.records == 300, report.summary()
        outputs[strategy] = (out / "data.csv.out").read_text()
    assert outputs["SingleRecord"] == outputs["MultiRecord"]
    assert outputs["MultiRecord"].splitlines() == expected_lines(data)


def test_many_concurrent_requests_are_written_back_in_order(
    gateway_url: str, tmp_path: Path
) -> None:
    data = rows(60_000, seed=1, width=6)  # ~2.3 MB: several 1 MB requests in flight at once
    src = write_csv(tmp_path / "in" / "big.csv", data)
    report = run(
        gateway_url,
        "toy",
        src,
        tmp_path / "out",
        max_payload_mb=1,
        max_concurrent=4,
        assemble_with="Line",
        **CSV_LINES,
    )
    assert report.ok, report.summary()
    assert report.plan is not None and report.plan.concurrency == 4
    assert (tmp_path / "out" / "big.csv.out").read_text().splitlines() == expected_lines(data)
    assert report.bytes == src.stat().st_size


def test_the_containers_execution_parameters_are_the_defaults(
    gateway_url: str, tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "in" / "a.csv", rows(10))
    report = run(gateway_url, "toy", src, tmp_path / "out", **CSV_LINES)
    assert report.ok and report.plan is not None
    # Found through the gateway's description of the endpoint (see conftest.EXEC_PARAMS).
    assert (report.plan.concurrency, report.plan.max_payload_bytes) == (3, 2 * 1024 * 1024)
    assert report.plan.sources["MaxConcurrentTransforms"] == "container"


def test_json_lines_with_filters_and_join(gateway_url: str, tmp_path: Path) -> None:
    docs: list[dict[str, Any]] = [
        {"id": i, "features": r, "note": "x"} for i, r in enumerate(rows(50, seed=2))
    ]
    src = tmp_path / "in" / "docs.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    report = run(
        gateway_url,
        "toy",
        src,
        tmp_path / "out",
        split_type="Line",
        batch_strategy="MultiRecord",
        content_type="application/jsonlines",
        accept="application/json",
        input_filter="$.features",
        join_source="Input",
        output_filter="$['id','SageMakerOutput']",
        assemble_with="Line",
    )
    assert report.ok, report.summary()
    got = [
        json.loads(line) for line in (tmp_path / "out" / "docs.jsonl.out").read_text().splitlines()
    ]
    assert got == [[d["id"], predict(d["features"])] for d in docs]


def test_json_join_without_output_filter_adds_sagemaker_output(
    gateway_url: str, tmp_path: Path
) -> None:
    docs: list[Any] = [{"id": 1, "features": [1, 2]}, [3, 4]]
    src = tmp_path / "in" / "mixed.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    report = run(
        gateway_url,
        "toy",
        src,
        tmp_path / "out",
        split_type="Line",
        content_type="application/jsonlines",
        join_source="Input",
        assemble_with="Line",
    )
    assert report.ok, report.summary()
    got = [
        json.loads(line) for line in (tmp_path / "out" / "mixed.jsonl.out").read_text().splitlines()
    ]
    assert got == [
        {"id": 1, "features": [1, 2], "SageMakerOutput": predict([1, 2])},
        {"SageMakerInput": [3, 4], "SageMakerOutput": predict([3, 4])},
    ]


def test_csv_join_with_an_id_column_filtered_out(gateway_url: str, tmp_path: Path) -> None:
    data = [[f"id{i}", *r] for i, r in enumerate(rows(40, seed=3))]
    src = write_csv(tmp_path / "in" / "ids.csv", data)
    report = run(
        gateway_url,
        "toy",
        src,
        tmp_path / "out",
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$[0,-1]",
        assemble_with="Line",
        **CSV_LINES,
    )
    assert report.ok, report.summary()
    lines = (tmp_path / "out" / "ids.csv.out").read_text().splitlines()
    assert lines == [f"{r[0]},{predict(r[1:])}" for r in data]


def test_a_poisoned_record_fails_its_file_only_and_is_named(
    gateway_url: str, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    good = {name: rows(200, seed=i) for i, name in enumerate(["a.csv", "sub/c.csv"])}
    for name, data in good.items():
        write_csv(src / name, data)
    bad: list[list[Any]] = [list(r) for r in rows(200, seed=9)]
    bad[56][2] = "poison"  # record 57; a blank line before it makes it line 58
    text = "".join(",".join(map(str, r)) + "\n" for r in bad)
    lines = text.splitlines(keepends=True)
    (src / "b.csv").write_text("".join(lines[:10]) + "\n" + "".join(lines[10:]))

    out = tmp_path / "out"
    report = run(
        gateway_url,
        "toy",
        src,
        out,
        batch_strategy="MultiRecord",
        assemble_with="Line",
        **CSV_LINES,
    )

    assert not report.ok and len(report.failures) == 1
    failure = report.failures[0]
    assert failure.input == str(src / "b.csv")
    assert (failure.record, failure.line) == (57, 58)
    assert "record 57 (line 58)" in failure.error and "'poison'" in failure.error
    for name, data in good.items():
        assert (out / f"{name}.out").read_text().splitlines() == expected_lines(data)
    leftovers = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert leftovers == ["_failures.json", "a.csv.out", "sub", "sub/c.csv.out"]
    saved = json.loads((out / "_failures.json").read_text())
    assert saved["failures"][0]["record"] == 57 and "poison" in saved["failures"][0]["error"]

    # Fixed, the rerun does only the failed file and drops the stale report.
    (src / "b.csv").write_text(text.replace("poison", "1"))
    report = run(
        gateway_url,
        "toy",
        src,
        out,
        batch_strategy="MultiRecord",
        assemble_with="Line",
        **CSV_LINES,
    )
    assert report.ok and len(report.skipped) == 2 and len(report.succeeded) == 1
    assert not (out / "_failures.json").exists()


def test_a_record_over_the_payload_limit_fails_naming_it(gateway_url: str, tmp_path: Path) -> None:
    src = tmp_path / "in" / "wide.csv"
    src.parent.mkdir()
    src.write_text("1,2\n" + ",".join(["1"] * 600_000) + "\n3,4\n")  # line 2: 1.2 MB
    report = run(gateway_url, "toy", src, tmp_path / "out", max_payload_mb=1, **CSV_LINES)
    (failure,) = report.failures
    assert failure.record == 2 and "more than the payload limit" in failure.error
    assert not (tmp_path / "out" / "wide.csv.out").exists()


def test_throttled_or_unavailable_answers_are_retried(gateway_url: str, tmp_path: Path) -> None:
    data = rows(5)
    src = write_csv(tmp_path / "in" / "x.csv", data)
    # The toy-flaky container answers 503 to its first two calls.
    report = run(
        gateway_url,
        "toy-flaky",
        src,
        tmp_path / "out",
        batch_strategy="SingleRecord",
        assemble_with="Line",
        max_concurrent=1,
        **CSV_LINES,
    )
    assert report.ok, report.summary()
    assert (tmp_path / "out" / "x.csv.out").read_text().splitlines() == expected_lines(data)


def test_direct_endpoints_take_a_target_container(gateway_url: str, tmp_path: Path) -> None:
    data = rows(20)
    src = write_csv(tmp_path / "in" / "d.csv", data)
    for target, scale in (("a", 1), ("b", 10)):
        out = tmp_path / target
        report = run(
            gateway_url,
            "toy-direct",
            src,
            out,
            target_container=target,
            assemble_with="Line",
            **CSV_LINES,
        )
        assert report.ok, report.summary()
        assert (out / "d.csv.out").read_text().splitlines() == expected_lines(data, scale)
    report = run(gateway_url, "toy-direct", src, tmp_path / "none", **CSV_LINES)
    (failure,) = report.failures
    assert failure.error.startswith("records 1-20 (lines 1-20): ValidationError:")


def test_whole_file_records_without_split(gateway_url: str, tmp_path: Path) -> None:
    files = {f"part-{i}.csv": rows(5, seed=i) for i in range(3)}
    for name, data in files.items():
        write_csv(tmp_path / "in" / name, data)
    (tmp_path / "in" / ".hidden.csv").write_text("not,an,input\n")
    report = run(
        gateway_url,
        "toy",
        tmp_path / "in",
        tmp_path / "out",
        content_type="text/csv",
        accept="application/json",
    )
    assert report.ok and len(report.succeeded) == 3, report.summary()
    for name, data in files.items():
        answer = json.loads((tmp_path / "out" / f"{name}.out").read_bytes())
        assert answer == {"predictions": [predict(r) for r in data]}
