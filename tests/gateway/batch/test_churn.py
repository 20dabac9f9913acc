"""The churn example (sklearn preprocess -> TensorFlow classifier) over 10,000 raw CSV rows.

Real containers behind a real ``tandem serve``; the answers are compared with the same artifacts
predicting in-process (``pipelines.examples.reference``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.batch import BatchConfig, BatchReport, run_batch
from gateway.batch.progress import Tracker
from pipelines.examples import SPECS, churn
from tests.support import PYTHON, ROOT, free_port, running

pytestmark = [pytest.mark.slow, pytest.mark.sklearn, pytest.mark.tensorflow]

ROWS = 10_000


@pytest.fixture(scope="module")
def churn_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("containers.sklearn")
    pytest.importorskip("containers.tensorflow")
    subprocess.run(
        [PYTHON, "-m", "pipelines.examples.build", "churn"], check=True, cwd=ROOT, timeout=900
    )
    folder = tmp_path_factory.mktemp("churn")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(SPECS["churn"]), "--port", str(port)]
    args += ["--state-dir", str(folder / "state")]
    with running(args, url=url, log=folder / "gateway.log", timeout=240):
        yield url


def transform(url: str, src: Path, out: Path, strategy: str, concurrent: int) -> BatchReport:
    config = BatchConfig.build(
        input=str(src),
        output=str(out),
        endpoint_url=url,
        endpoint="churn",
        split_type="Line",
        batch_strategy=strategy,
        max_concurrent=concurrent,
        assemble_with="Line",
        content_type="text/csv",
        accept="application/json",
    )
    return run_batch(config, tracker=Tracker())


def probabilities(path: Path) -> list[list[float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_churn_over_10000_rows_matches_the_in_process_prediction(
    churn_url: str, tmp_path: Path
) -> None:
    import numpy as np

    from pipelines.examples import reference

    rows, _ = churn.raw_rows(ROWS, seed=11)
    src = tmp_path / "in" / "customers.csv"
    src.parent.mkdir()
    src.write_text(churn.to_csv(rows))

    multi = transform(churn_url, src, tmp_path / "multi", "MultiRecord", 2)
    assert multi.ok and multi.records == ROWS, multi.summary()
    got = np.array(probabilities(tmp_path / "multi" / "customers.csv.out"))
    expected = reference.churn_probabilities(rows, tmp_path / "scratch")
    assert got.shape == expected.shape == (ROWS, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    # SingleRecord: one request per row through both containers, the same file, the same answers.
    single = transform(churn_url, src, tmp_path / "single", "SingleRecord", 4)
    assert single.ok and single.records == ROWS, single.summary()
    one_by_one = np.array(probabilities(tmp_path / "single" / "customers.csv.out"))
    np.testing.assert_allclose(one_by_one, got, rtol=1e-5, atol=1e-6)
