"""Which predictions run on the event loop: the record on its own, then real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("sklearn")

from containers.fastpath import SMALL_BODY, TRIALS, FastPath
from tests.containers.conftest import Container, StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier
from tests.support import wait_until

BUDGET = 0.001


def proven(seconds: float = BUDGET / 2) -> FastPath:
    fast = FastPath("m", BUDGET, eligible=True)
    for _ in range(TRIALS):
        assert fast.on_trial(100) and not fast.runs_inline(100)
        fast.timed(seconds)
    return fast


def test_a_model_runs_inline_only_after_fast_trials_and_only_small_bodies() -> None:
    fast = proven()
    assert fast.runs_inline(100) and fast.runs_inline(SMALL_BODY)
    assert not fast.runs_inline(SMALL_BODY + 1)
    assert not fast.on_trial(100)  # decided: no more timing in threads


def test_slow_trials_keep_a_model_in_threads() -> None:
    fast = proven(seconds=BUDGET * 1.5)
    assert not fast.runs_inline(100) and not fast.on_trial(100)


def test_the_median_decides_so_one_slow_trial_does_not() -> None:
    fast = FastPath("m", BUDGET, eligible=True)
    for seconds in [BUDGET * 50] + [BUDGET / 4] * (TRIALS - 1):
        fast.timed(seconds)
    assert fast.runs_inline(100)


def test_user_code_large_bodies_and_a_zero_budget_are_never_tried() -> None:
    assert not FastPath("m", BUDGET, eligible=False).on_trial(100)
    assert not FastPath("m", 0.0, eligible=True).on_trial(100)
    assert not FastPath("m", BUDGET, eligible=True).on_trial(SMALL_BODY + 1)


def test_one_very_slow_run_on_the_loop_sends_the_model_back_for_good() -> None:
    fast = proven()
    fast.ran_inline(BUDGET * 25)
    assert not fast.runs_inline(100) and not fast.on_trial(100)


def test_runs_slowing_down_on_average_send_the_model_back() -> None:
    fast = proven()
    runs = 0
    while fast.runs_inline(100):
        fast.ran_inline(BUDGET * 3)  # each under the one-run limit, the average creeps up
        runs += 1
        assert runs < 50
    assert runs > 1


# --- real servers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> Any:
    return train_classifier()


def start(
    start_container: StartContainer, model_dir: Path, budget_ms: str
) -> tuple[Container, httpx.Client]:
    env = {"TANDEM_LOG_LEVEL": "info", "TANDEM_INLINE_PREDICT_MS": budget_ms}
    container = start_container("sklearn", model_dir, env=env)
    return container, httpx.Client(base_url=container.url, timeout=30)


def predict_many(http: httpx.Client, rows: np.ndarray, classifier: Any, count: int) -> None:
    expected = classifier.predict(rows).tolist()
    for _ in range(count):
        answer = http.post(
            "/invocations", content=csv_body(rows), headers={"Content-Type": "text/csv"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected


@pytest.mark.sklearn
def test_a_fast_default_model_moves_to_the_loop_and_answers_the_same(
    start_container: StartContainer, tmp_path: Path, classifier: Any
) -> None:
    container, http = start(start_container, package(tmp_path, classifier), "50")
    rows = synthetic(3, seed=1)
    with http:
        predict_many(http, rows, classifier, TRIALS)
        wait_until(lambda: "run on the event loop" in container.log_text(), timeout=10)
        predict_many(http, rows, classifier, 5)  # now on the loop: same answers
        big = synthetic(300, seed=2)
        assert len(csv_body(big)) > SMALL_BODY  # so a thread answers it
        predict_many(http, big, classifier, 1)
    assert container.alive()


@pytest.mark.sklearn
def test_user_code_and_a_zero_budget_stay_in_threads(
    start_container: StartContainer, tmp_path: Path, classifier: Any
) -> None:
    code = "def predict_fn(data, model):\n    return model.predict(data)\n"
    with_code = package(tmp_path / "code", classifier, code=code)
    plain = package(tmp_path / "plain", classifier)
    rows = synthetic(2, seed=3)
    for model_dir, budget in ((with_code, "50"), (plain, "0")):
        container, http = start(start_container, model_dir, budget)
        with http:
            predict_many(http, rows, classifier, TRIALS + 4)
        assert "event loop" not in container.log_text()
