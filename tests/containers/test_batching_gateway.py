"""The spec's ``batching`` through a real gateway: it reaches the container, and its series the
gateway's ``GET /metrics``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("sklearn")

from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.sklearn


def batch_count(text: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tandem_container_batch_size_count" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return sample.value
    return None


def test_spec_batching_reaches_the_container_and_the_gateway_metrics(tmp_path: Path) -> None:
    package(tmp_path / "pkg", train_classifier())
    spec = {
        "name": "batched",
        "containers": [
            {
                "hostname": "lr",
                "framework": "sklearn",
                "model_data": str(tmp_path / "pkg" / "model.tar.gz"),
                "batching": {"max_batch_size": 8, "max_batch_delay_ms": 1},
            }
        ],
    }
    spec_path = tmp_path / "batched.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(spec_path), "--state-dir", str(tmp_path / "s")]
    with running([*args, "--port", str(port)], url=url, timeout=120, log=tmp_path / "gw.log"):
        for row in synthetic(3, seed=1):
            answer = httpx.post(
                f"{url}/endpoints/batched/invocations",
                content=csv_body(row.reshape(1, -1)),
                headers={"Content-Type": "text/csv"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        labels = {"endpoint": "batched", "container": "lr", "model": "model"}
        # The relay fetches at most once a second: poll until the three calls show.
        wait_until(
            lambda: batch_count(httpx.get(url + "/metrics", timeout=5).text, **labels) == 3,
            timeout=30,
            what="the container's batches in the gateway's metrics",
        )
