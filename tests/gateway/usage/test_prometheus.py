"""Per-model Prometheus series stay bounded: the top K models, the rest under ``other``."""

from __future__ import annotations

import pytest

from gateway.cloudwatch.recorder import Recorder
from gateway.metrics import GatewayMetrics
from gateway.usage.topk import TopModels

NOW = 1_800_000_000.0


def series(models: int, k: int) -> dict[str, float]:
    """The ``tandem_model_window_invocations`` samples of a scrape after traffic to ``models``
    models (model i gets i + 1 requests), by model label."""
    top = TopModels(k, window=300)
    recorder = Recorder(lambda: NOW - 60)
    recorder.tap(top.add)
    for i in range(models):
        for _ in range(i + 1):
            recorder.invocation("mme", "AllTraffic", f"m{i}", "2xx", 1000, 10, 1, 1)
    recorder.invocation("single", "AllTraffic", None, "2xx", 1000, 10, 1, 1)  # not per-model
    recorder.drain()
    metrics = GatewayMetrics([])
    metrics.per_model(lambda: top.sample(NOW))
    found: dict[str, float] = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith("tandem_model_window_invocations{"):
            model = line.split('model="', 1)[1].split('"', 1)[0]
            found[model] = float(line.rsplit(" ", 1)[1])
    return found


@pytest.mark.parametrize("models", [10, 1000])
def test_series_are_bounded_whatever_the_number_of_models(models: int) -> None:
    found = series(models, k=50)
    assert len(found) == min(models, 50) + (1 if models > 50 else 0)
    assert sum(found.values()) == models * (models + 1) / 2  # nothing lost: the rest is other
    assert found[f"m{models - 1}"] == models  # the busiest has its own series


def test_the_window_forgets_old_traffic() -> None:
    top = TopModels(5, window=60)
    recorder = Recorder(lambda: NOW - 600)
    recorder.tap(top.add)
    recorder.invocation("mme", "v", "old", "2xx", 1, 1, 1, 1)
    recorder.drain()
    assert top.sample(NOW - 590) == [("mme", "v", "old", 1.0, 1e-6)]
    assert top.sample(NOW) == []


def test_the_top_set_is_the_samples_top_k_ties_included() -> None:
    """What CloudWatch keeps ``TargetModel`` series for is what Prometheus shows on its own."""
    top = TopModels(3, window=300)
    recorder = Recorder(lambda: NOW - 60)
    recorder.tap(top.add)
    for name, n in [("a", 2), ("b", 5), ("c", 2), ("d", 2), ("e", 1)]:  # a, c, d tie
        for _ in range(n):
            recorder.invocation("mme", "v", name, "2xx", 1000, 10, 1, 1)
    recorder.drain()
    ranked = [s for s in top.sample(NOW) if s[2] != "other"]
    assert [s[2] for s in ranked] == ["b", "a", "c"]
    assert top.top(NOW) == {("mme", "v", "b"), ("mme", "v", "a"), ("mme", "v", "c")}
