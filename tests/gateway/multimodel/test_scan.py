"""The scan case of issue 29 on a real ``tandem serve`` and a real scikit-learn container.

A hot set is used all the time while a long run of one-time models passes through; memory holds
a few models. Loads are counted (every request for a model not loaded is one cache miss, and
one load), never timed. Under ``value`` the hot set loads once; under ``lru``, on the same
stream, it loads again and again, which shows the stream does push it out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from tests.gateway.harness import sagemaker_client
from tests.gateway.multimodel.stores import (
    big_model,
    csv_body,
    gateway,
    loaded,
    metric,
    pack,
    synthetic,
    write_spec,
)

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

HOT = [f"hot-{i}.tar" for i in range(3)]
ONCE = [f"once-{i:02d}.tar" for i in range(24)]
#: 30 MB each; the limit leaves room for 5 to 7 of them beside the container's own memory (its
#: resident size moves with the machine), never for the 14 between two uses of a hot model.
MODEL_MB = 30
LIMIT = "330MiB"


def stream() -> list[str]:
    """The hot set twice, then four one-time models before each hot model in turn."""
    order = HOT * 2
    for group in range(len(ONCE) // 4):
        order += [*ONCE[4 * group : 4 * group + 4], HOT[group % len(HOT)]]
    return order + HOT


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scan")
    models = root / "store"
    pack(models / HOT[0], big_model(MODEL_MB), mode="w")
    for target in [*HOT[1:], *ONCE]:
        shutil.copy(models / HOT[0], models / target)
    return root


@pytest.mark.parametrize("policy", ["value", "lru"])
def test_a_run_of_one_time_models_leaves_the_hot_set_loaded_once(
    store: Path, tmp_path: Path, policy: str
) -> None:
    shutil.copytree(store / "store", tmp_path / "store")
    multi = {
        "framework": "sklearn",
        "mode": "MultiModel",
        "model_data": "./store",
        "memory_limit": LIMIT,
        "environment": {"TANDEM_INTRA_OP_THREADS": "1"},
    }
    spec = write_spec(tmp_path, "scan", "Serial", {"multi": multi})
    x = csv_body(synthetic(2, seed=1))
    with gateway(tmp_path, spec, env={"TANDEM_EVICTION_POLICY": policy}) as (url, _):
        client = sagemaker_client(url)
        for target in stream():
            answer = client.invoke_endpoint(
                EndpointName="scan", TargetModel=target, ContentType="text/csv", Body=x
            )
            answer["Body"].read()
        misses = metric(url, "tandem_model_cache_misses_total", container="multi")
        evictions = metric(url, "tandem_model_evictions_total", reason="memory")
        now = loaded(url, "scan", "multi")
    assert evictions > 0, "memory never ran short: the case did not happen"
    hot_loads = misses - len(ONCE)  # each one-time model loads exactly once
    if policy == "value":
        assert hot_loads == len(HOT)
        assert set(HOT) <= set(now)
    else:
        assert hot_loads > len(HOT)
