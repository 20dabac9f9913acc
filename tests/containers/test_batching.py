"""Adaptive batching in a real scikit-learn container: stacked answers equal single ones.

A user ``model_fn`` wraps the real model in a gate (a file the test touches), so one request can be
held in its model call while the others queue: then the next batch is known, and the batch-size
histogram the container exposes shows what was stacked. Default ``input_fn``/``predict_fn`` stay,
so the requests are stackable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("sklearn")

from containers import codecs
from tests.containers.conftest import StartContainer
from tests.containers.sklearn_models import csv_body, npy_body, package, synthetic, train_classifier
from tests.support import wait_until

pytestmark = pytest.mark.sklearn

#: User code shared by every framework's test: hold one model call until the test releases it.
GATE_PY = """
import os
import time
from pathlib import Path


def gate():
    root = Path(os.environ["BATCH_GATE"])
    hold = root / "hold"
    if not hold.exists():
        return
    hold.unlink()
    (root / "started").touch()
    release = root / "release"
    deadline = time.monotonic() + 30
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    release.unlink(missing_ok=True)
"""

SKLEARN_CODE = """
import joblib
from gate import gate


class Gated:
    def __init__(self, model):
        self.model = model

    def predict(self, x):
        gate()
        return self.model.predict(x)


def model_fn(model_dir):
    return Gated(joblib.load(f"{model_dir}/model.joblib"))
"""

#: (Content-Type, Accept) pairs: each request is answered in its own.
KINDS = (
    (codecs.JSON, codecs.JSON),
    (codecs.CSV, codecs.CSV),
    (codecs.JSONLINES, codecs.JSONLINES),
    (codecs.NPY, codecs.NPY),
)


def body_for(row: np.ndarray, media: str) -> bytes:
    """One row (a 1 x n array) in ``media``."""
    if media == codecs.JSON:
        return json.dumps(row.tolist()).encode()
    if media == codecs.CSV:
        return csv_body(row)
    if media == codecs.JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in row.tolist()).encode()
    return npy_body(row)


@dataclass
class Batches:
    """The container's batch-size histogram for one model (and its queue gauge)."""

    count: float
    total: float
    queued: float
    buckets: dict[str, float]
    wait_buckets: dict[str, float]


def batch_stats(url: str, model: str = "model") -> Batches:
    text = httpx.get(url + "/metrics", timeout=5).text
    found = Batches(0, 0, 0, {}, {})
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name == "tandem_container_batch_size_count":
                found.count = sample.value
            elif sample.name == "tandem_container_batch_size_sum":
                found.total = sample.value
            elif sample.name == "tandem_container_batch_size_bucket":
                found.buckets[sample.labels["le"]] = sample.value
            elif sample.name == "tandem_container_batch_wait_seconds_bucket":
                found.wait_buckets[sample.labels["le"]] = sample.value
            elif sample.name == "tandem_container_batch_queued":
                found.queued = sample.value
    return found


Request = tuple[str, bytes, dict[str, str]]


def post(url: str, request: Request) -> httpx.Response:
    path, body, headers = request
    return httpx.post(url + path, content=body, headers=headers, timeout=60)


def held_batch(
    url: str, gate: Path, requests: Sequence[Request], *, model: str = "model", hold: Request
) -> list[httpx.Response]:
    """Hold ``hold`` in its model call, queue ``requests`` behind it, release: their answers."""
    (gate / "hold").touch()
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        first = pool.submit(post, url, hold)
        wait_until(lambda: (gate / "started").exists(), timeout=30, what="held call started")
        (gate / "started").unlink()
        queued_before = batch_stats(url, model).queued
        futures = [pool.submit(post, url, request) for request in requests]
        wait_until(
            lambda: batch_stats(url, model).queued >= queued_before + len(requests),
            timeout=30,
            what=f"{len(requests)} requests queued",
        )
        (gate / "release").touch()
        assert first.result().status_code == 200, first.result().text
        return [future.result() for future in futures]


def same_answers(
    url: str,
    gate: Path,
    rows: np.ndarray,
    *,
    path: str = "/invocations",
    headers: dict[str, str] | None = None,
    model: str = "model",
    check: Callable[[bytes, bytes, str], None] | None = None,
) -> None:
    """len(rows) one-row requests, concurrent and each in its own type: as single calls answer."""
    requests: list[Request] = []
    for index, row in enumerate(rows):
        content_type, accept = KINDS[index % len(KINDS)]
        requests.append(
            (
                path,
                body_for(row.reshape(1, -1), content_type),
                {"Content-Type": content_type, "Accept": accept, **(headers or {})},
            )
        )
    single = [post(url, request) for request in requests]
    assert all(r.status_code == 200 for r in single), [r.text for r in single]
    before = batch_stats(url, model)
    batched = held_batch(url, gate, requests, model=model, hold=requests[0])
    after = batch_stats(url, model)
    for (_, _, sent), alone, together in zip(requests, single, batched, strict=True):
        assert together.status_code == 200, together.text
        assert together.headers["content-type"].startswith(sent["Accept"])
        if check is None:
            assert together.content == alone.content
        else:
            check(together.content, alone.content, sent["Accept"])
    # The held call was one batch; the queued requests formed one batch per (type, accept).
    assert after.count - before.count == 1 + len(KINDS)
    assert after.total - before.total == 1 + len(rows)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def url(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory, gate: Path
) -> str:
    model_dir = package(
        tmp_path_factory.mktemp("sk-batch"),
        train_classifier(),
        code=SKLEARN_CODE,
        extra_code={"gate.py": GATE_PY},
    )
    env = {
        "TANDEM_MAX_BATCH_SIZE": "32",
        "TANDEM_MAX_BATCH_DELAY_MS": "1000",
        "BATCH_GATE": str(gate),
    }
    return start_container("sklearn", model_dir, env=env).url


def test_concurrent_rows_answer_as_single_calls(url: str, gate: Path) -> None:
    same_answers(url, gate, synthetic(32, seed=3))


def test_a_lone_request_is_not_held_for_the_delay(url: str) -> None:
    before = batch_stats(url)
    row = synthetic(1, seed=4)
    response = httpx.post(
        url + "/invocations",
        content=body_for(row, codecs.CSV),
        headers={"Content-Type": codecs.CSV},
    )
    assert response.status_code == 200, response.text
    after = batch_stats(url)
    assert after.count - before.count == 1
    assert after.buckets["1.0"] - before.buckets.get("1.0", 0) == 1  # a batch of one
    # The delay is 1 s: a request that waited for it would not be in the 0.5 s bucket.
    assert after.wait_buckets["0.5"] - before.wait_buckets.get("0.5", 0) == 1


def test_a_bad_row_fails_only_its_request(url: str, gate: Path) -> None:
    rows = synthetic(8, seed=5)
    requests: list[Request] = [
        ("/invocations", csv_body(row.reshape(1, -1)), {"Content-Type": codecs.CSV}) for row in rows
    ]
    bad = rows[3].copy()
    bad[2] = np.nan  # same width, so it joins the batch; the model refuses NaN
    requests[3] = ("/invocations", csv_body(bad.reshape(1, -1)), {"Content-Type": codecs.CSV})
    single = [post(url, r) for i, r in enumerate(requests) if i != 3]
    before = batch_stats(url)
    answers = held_batch(url, gate, requests, hold=requests[0])
    after = batch_stats(url)
    assert after.count - before.count == 2  # the held call, then all eight stacked
    assert after.total - before.total == 9
    assert answers[3].status_code == 400, answers[3].text
    assert answers[3].json()["error"] == "bad_input"
    assert "NaN" in answers[3].json()["message"]
    good = [a for i, a in enumerate(answers) if i != 3]
    assert [a.status_code for a in good] == [200] * 7
    assert [a.content for a in good] == [s.content for s in single]


def test_requests_of_other_widths_never_mix(url: str, gate: Path) -> None:
    narrow = synthetic(4, seed=6)[:, :5]
    requests: list[Request] = [
        ("/invocations", body_for(r.reshape(1, -1), codecs.JSON), {"Content-Type": codecs.JSON})
        for r in synthetic(4, seed=7)
    ]
    requests += [
        ("/invocations", body_for(r.reshape(1, -1), codecs.JSON), {"Content-Type": codecs.JSON})
        for r in narrow
    ]
    before = batch_stats(url)
    answers = held_batch(url, gate, requests, hold=requests[0])
    after = batch_stats(url)
    assert after.count - before.count == 3  # held, 4 full rows, 4 narrow rows
    assert [a.status_code for a in answers[:4]] == [200] * 4
    assert [a.status_code for a in answers[4:]] == [400] * 4  # the model takes 20 features


def test_batching_is_off_by_default(start_container: StartContainer, tmp_path: Path) -> None:
    model_dir = package(tmp_path / "plain", train_classifier())
    plain = start_container("sklearn", model_dir).url
    rows = synthetic(4, seed=8)
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda row: httpx.post(
                    plain + "/invocations",
                    content=body_for(row.reshape(1, -1), codecs.JSON),
                    headers={"Content-Type": codecs.JSON},
                ),
                rows,
            )
        )
    assert [a.status_code for a in answers] == [200] * 4
    assert batch_stats(plain).count == 0


def test_multi_model_batches_per_model(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory, gate: Path
) -> None:
    env = {"TANDEM_MAX_BATCH_SIZE": "32", "BATCH_GATE": str(gate)}
    container = start_container("sklearn", env=env, multi_model=True)
    for name, seed in (("first", 0), ("second", 1)):
        model_dir = package(
            tmp_path_factory.mktemp(f"mm-{name}"),
            train_classifier(seed),
            code=SKLEARN_CODE,
            extra_code={"gate.py": GATE_PY},
        )
        loaded = httpx.post(
            container.url + "/models", json={"model_name": name, "url": str(model_dir)}, timeout=60
        )
        assert loaded.status_code == 200, loaded.text
    rows = synthetic(8, seed=9)
    for name in ("first", "second"):
        same_answers(container.url, gate, rows, path=f"/models/{name}/invoke", model=name)
    deleted = httpx.delete(container.url + "/models/first", timeout=30)
    assert deleted.status_code == 200
    assert batch_stats(container.url, "first").count == 0  # its series went with it
    assert batch_stats(container.url, "second").count == len(rows) + 1 + len(KINDS)


def test_mixed_requests_to_a_model_on_the_loop_all_answer(
    start_container: StartContainer, tmp_path: Path
) -> None:
    """No user code: after its trials the model predicts on the loop; other keys still follow."""
    model_dir = package(tmp_path / "fast", train_classifier())
    env = {"TANDEM_MAX_BATCH_SIZE": "32", "TANDEM_INLINE_PREDICT_MS": "1000"}
    container = start_container("sklearn", model_dir, env=env)
    fast = container.url
    rows = synthetic(64, seed=10)
    requests: list[Request] = [
        (
            "/invocations",
            body_for(row.reshape(1, -1), KINDS[i % 4][0]),
            {"Content-Type": KINDS[i % 4][0], "Accept": KINDS[i % 4][1]},
        )
        for i, row in enumerate(rows)
    ]
    single = [post(fast, request) for request in requests]  # 64 > the 16 trials
    assert "run on the event loop" in container.log_text()
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(lambda request: post(fast, request), requests))
    assert [r.status_code for r in together] == [200] * len(requests)
    assert [r.content for r in together] == [r.content for r in single]
