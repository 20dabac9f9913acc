"""Warm-up (``warmup.json`` in a model's folder) on a real multi-model scikit-learn container.

The samples run through the model's own handler at load, before ``POST /models`` answers, so the
first request finds the model warm; a broken warm-up fails the load and leaves nothing loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytest.importorskip("sklearn")

from tests.containers.conftest import StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier

pytestmark = pytest.mark.sklearn

#: A user predict_fn that writes one line per call to a file named by the model's folder.
COUNTING_FN = """
from pathlib import Path

def predict_fn(data, model, context):
    with open(Path(context.model_dir) / "calls.txt", "a") as calls:
        calls.write("call\\n")
    return model.predict(data)
"""


def model_with_warmup(root: Path, warmup: dict[str, object] | None) -> Path:
    model_dir = package(root, train_classifier(3), code=COUNTING_FN)
    if warmup is not None:
        (model_dir / "warmup.json").write_text(json.dumps(warmup))
    return model_dir


def calls(model_dir: Path) -> int:
    path = model_dir / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_samples_run_at_load_before_the_first_request(
    start_container: StartContainer, tmp_path: Path
) -> None:
    container = start_container("sklearn", multi_model=True)
    rows = csv_body(synthetic(2, seed=5)).decode()
    warm = model_with_warmup(
        tmp_path / "warm", {"ContentType": "text/csv", "Body": rows, "Count": 2}
    )
    (tmp_path / "cold").mkdir()
    cold = model_with_warmup(tmp_path / "cold", None)
    for name, folder in (("warm", warm), ("cold", cold)):
        answer = httpx.post(
            f"{container.url}/models", json={"model_name": name, "url": str(folder)}, timeout=60
        )
        assert answer.status_code == 200, answer.text
    assert (calls(warm), calls(cold)) == (2, 0)
    answer = httpx.post(
        f"{container.url}/models/warm/invoke",
        content=rows.encode(),
        headers={"Content-Type": "text/csv"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert calls(warm) == 3


@pytest.mark.parametrize(
    "warmup",
    [
        {"BodyFile": "../../outside.csv"},
        {"ContentType": "text/csv", "Body": "not,a,number,row\n"},
        {"Body": "[]", "Count": 0},
    ],
)
def test_a_broken_warmup_fails_the_load_and_loads_nothing(
    start_container: StartContainer, tmp_path: Path, warmup: dict[str, object]
) -> None:
    container = start_container("sklearn", multi_model=True)
    folder = model_with_warmup(tmp_path / "broken", warmup)
    answer = httpx.post(
        f"{container.url}/models", json={"model_name": "broken", "url": str(folder)}, timeout=60
    )
    assert answer.status_code == 500, answer.text
    assert answer.json()["error"] == "model_load_error"
    assert "warm" in answer.json()["message"]
    assert httpx.get(f"{container.url}/models/broken").status_code == 404
