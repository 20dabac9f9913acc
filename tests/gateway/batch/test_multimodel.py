"""A batch job through a MultiModel endpoint: ``target_model`` picks the model of every request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from gateway.batch import BatchConfig, run_batch
from gateway.batch.progress import Tracker
from tests.gateway.multimodel.stores import (
    csv_body,
    gateway,
    pack,
    synthetic,
    train_classifier,
    write_spec,
)

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def test_target_model_picks_the_model_of_a_multi_model_endpoint(tmp_path: Path) -> None:
    models = {"Houston_TX.tar.gz": train_classifier(1), "team/Austin.tar.gz": train_classifier(2)}
    for target, model in models.items():
        pack(tmp_path / "store" / target, model)
    # Probabilities differ from model to model, so a wrong model could not pass for the right one.
    multi = {
        "framework": "sklearn",
        "mode": "MultiModel",
        "model_data": "./store",
        "environment": {"TANDEM_SKLEARN_METHOD": "predict_proba", "TANDEM_INTRA_OP_THREADS": "1"},
    }
    spec = write_spec(tmp_path, "houses", "Serial", {"multi": multi})
    x = synthetic(300, seed=5)
    src = tmp_path / "in" / "rows.csv"
    src.parent.mkdir()
    src.write_bytes(csv_body(x))
    with gateway(tmp_path, spec) as (url, _):
        for i, (target, model) in enumerate(models.items()):
            out = tmp_path / f"out{i}"
            config = BatchConfig.build(
                input=str(src),
                output=str(out),
                endpoint_url=url,
                endpoint="houses",
                target_model=target,
                content_type="text/csv",
                accept="text/csv",
                split_type="Line",
                assemble_with="Line",
            )
            report = run_batch(config, tracker=Tracker())
            assert report.ok and report.records == len(x), report.summary()
            lines = (out / "rows.csv.out").read_text().splitlines()
            got = np.array([[float(v) for v in line.split(",")] for line in lines])
            np.testing.assert_allclose(got, model.predict_proba(x), rtol=1e-9)
            others = [m for t, m in models.items() if t != target]
            assert not any(np.allclose(got, m.predict_proba(x)) for m in others)
