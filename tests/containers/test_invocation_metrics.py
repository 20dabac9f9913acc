"""The container's own clock: a ``Server-Timing`` on every answer, its totals per model on
``GET /metrics`` (what the gateway's usage ledger is checked against)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("sklearn")

from gateway.calls import own_seconds
from tests.containers.conftest import StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier

pytestmark = pytest.mark.sklearn
ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}


def totals(url: str) -> dict[str, dict[str, float]]:
    """``{family: {model: value}}`` of the container's invocation counters."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        if family.name.startswith("tandem_container_invocation"):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out.setdefault(family.name, {})[sample.labels["model"]] = sample.value
    return out


def test_every_answer_carries_its_time_and_the_totals_add_up_per_model(
    start_container: StartContainer, tmp_path: Path
) -> None:
    container = start_container("sklearn", env=ONE_THREAD, multi_model=True)
    for seed, name in enumerate(("alpha", "beta")):
        model_dir = package(tmp_path / name, train_classifier(seed))
        loaded = httpx.post(
            container.url + "/models", json={"model_name": name, "url": str(model_dir)}, timeout=60
        )
        assert loaded.status_code == 200, loaded.text
    sent = {"alpha": 3, "beta": 2}
    told: dict[str, float] = {"alpha": 0.0, "beta": 0.0}
    with httpx.Client(base_url=container.url, timeout=30) as client:
        for name, count in sent.items():
            for _ in range(count):
                answer = client.post(
                    f"/models/{name}/invoke",
                    content=csv_body(synthetic(4)),
                    headers={"Content-Type": "text/csv"},
                )
                assert answer.status_code == 200, answer.text
                seconds = own_seconds(answer.headers["server-timing"])
                assert seconds is not None and seconds > 0
                told[name] += seconds
        # A model error is the container's time too, and is counted.
        refused = client.post(
            "/invocations",
            content=b"x",
            headers={"Content-Type": "image/gif", "X-Amzn-SageMaker-Target-Model": "beta"},
        )
        assert refused.status_code == 415
        beta_error = own_seconds(refused.headers["server-timing"])
        assert beta_error is not None
        told["beta"] += beta_error
        # An unloaded model's totals stay: counters never go back.
        assert client.delete("/models/alpha").status_code == 200
    found = totals(container.url)
    assert found["tandem_container_invocations"] == {"alpha": 3.0, "beta": 3.0}
    for name, seconds in told.items():
        # Each header is rounded to the microsecond: the totals are the same times.
        got = found["tandem_container_invocation_seconds"][name]
        assert got == pytest.approx(seconds, abs=1e-6 * (sent[name] + 1))


def test_own_seconds_reads_the_model_entry_of_a_server_timing_header() -> None:
    assert own_seconds("model;dur=1.500") == pytest.approx(0.0015)
    assert own_seconds('db;dur=4, model;desc="predict";dur=2') == pytest.approx(0.002)
    for header in (None, "", "db;dur=3", "model", "model;dur=soon", "model;dur=-1"):
        assert own_seconds(header) is None
