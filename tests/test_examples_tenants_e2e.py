"""The ``tenants`` example as the demo runs it: a real ``tandem serve`` of ``tenants.yaml`` (one
MultiModel container on two instances), called through boto3, its figures read back through boto3's
``cloudwatch`` client; and ``tandem endpoints describe`` showing which instance holds which model.

Nothing here is timed: the counts are the gateway's own (Prometheus, CloudWatch, its admin route).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from gateway.cli.invoke import parse_server_timing
from pipelines.examples import SPECS, tenants, tenants_calls
from tests.gateway.lifecycle.test_instances_describe import describe_cli
from tests.support import PYTHON, free_port, running
from tests.test_examples_e2e import build_examples

pytestmark = [pytest.mark.slow, pytest.mark.sklearn]

MODELS = len(tenants.ARTIFACTS)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tenants models built (if missing) where the spec points, served by one gateway."""
    build_examples("tenants")
    state = tmp_path_factory.mktemp("gateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(SPECS["tenants"]), "--port", str(port)]
    args += ["--state-dir", str(state)]
    env = {"TANDEM_METRIC_FLUSH_INTERVAL": "1"}
    with running(args, env=env, url=url, timeout=300, log=state / "gateway.log"):
        yield url


@pytest.fixture(scope="module")
def run(gateway_url: str) -> tenants_calls.TenantsRun:
    return tenants_calls.run(gateway_url, rounds=3)


def test_each_customer_gets_its_own_model(run: tenants_calls.TenantsRun) -> None:
    assert sorted(run.answers) == sorted(tenants.ARTIFACTS)
    row = np.asarray(tenants_calls.ROW)
    for customer, target in enumerate(tenants.ARTIFACTS):
        w = tenants.weights(customer)
        assert run.answers[target] == pytest.approx(row @ w[:-1] + w[-1], abs=0.5), target
    assert len({round(v, 3) for v in run.answers.values()}) == MODELS


def test_each_model_sits_on_exactly_one_instance(run: tenants_calls.TenantsRun) -> None:
    assert len(run.holders) == 2
    assert all(run.holders.values()), run.holders  # both instances hold some
    loaded = [m for models in run.holders.values() for m in models]
    assert sorted(loaded) == sorted(tenants.ARTIFACTS)  # every model, once
    assert tenants_calls.copies_per_model(run) == 1.0


def test_first_calls_load_and_later_calls_are_warm(run: tenants_calls.TenantsRun) -> None:
    assert run.calls == 2 + 3 * MODELS
    assert (run.misses, run.hits) == (MODELS, run.calls - MODELS)  # the gateway's own counters
    steps = [[name for name, _ in parse_server_timing(c.timing)] for c in (run.first, run.warm)]
    assert steps == [["container-1", "overhead"]] * 2


def test_cloudwatch_counts_the_run(run: tenants_calls.TenantsRun) -> None:
    figures = run.figures
    assert figures[("Invocations", "Sum")] == run.calls
    assert figures[("ModelLoadingTime", "SampleCount")] == MODELS  # one load per model
    assert figures[("ModelCacheHit", "Sum")] == run.calls - MODELS
    assert figures[("ModelCacheHit", "Average")] == pytest.approx((run.calls - MODELS) / run.calls)
    largest = max(len(models) for models in run.holders.values())
    assert figures[("LoadedModelCount", "Maximum")] == largest
    assert figures[("ModelLatency", "Average")] > 0


def test_describe_shows_which_instance_holds_which_model(
    gateway_url: str, run: tenants_calls.TenantsRun
) -> None:
    output = describe_cli(gateway_url, "tenants", columns=1000)  # no row wraps
    lines = output.split("instances (now)", 1)[1].splitlines()
    for instance, models in run.holders.items():
        (row,) = [line for line in lines if f" {instance} " in line]
        assert f"{len(models)} ({', '.join(models)})" in row
        assert "running" in row
