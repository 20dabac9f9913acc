"""The backlog gauges in a real gateway's ``GET /metrics``: 0 when idle, the queue while it drains.

SageMaker scales asynchronous endpoints on ApproximateBacklogSizePerInstance; Tandem publishes it
(with ApproximateBacklogSize and ApproximateAgeOfOldestRequest) for Prometheus, an HPA or any
autoscaler. A slow container (``CONTRACT_SLEEP``) keeps requests queued long enough to be seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, toy
from tests.support import wait_until

pytestmark = pytest.mark.slow

INSTANCES = 2
SIZE = 'tandem_approximate_backlog_size{endpoint="%s"}'
PER_INSTANCE = 'tandem_approximate_backlog_size_per_instance{endpoint="%s"}'
AGE = 'tandem_approximate_age_of_oldest_request{endpoint="%s"}'


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("metrics")
    specs = [
        spec(
            "slow",
            str(folder / "out"),
            containers=[toy(CONTRACT_SLEEP=0.5)],
            instance_count=INSTANCES,
            async_fields={"max_concurrent_invocations_per_instance": 1},
        ),
        spec("idle", str(folder / "idle")),
        {"name": "realtime", "containers": [toy()]},
    ]
    with gateway(folder, specs) as running_gateway:
        yield running_gateway


def gauges(gw: Gateway, endpoint: str) -> tuple[float, float, float]:
    """(backlog, per instance, age of the oldest) of ``endpoint``, from one scrape."""
    found = gw.metrics()
    return found[SIZE % endpoint], found[PER_INSTANCE % endpoint], found[AGE % endpoint]


def test_every_async_endpoint_reads_0_when_idle(gw: Gateway) -> None:
    assert gauges(gw, "idle") == (0.0, 0.0, 0.0)
    assert gauges(gw, "slow") == (0.0, 0.0, 0.0)
    assert not [name for name in gw.metrics() if 'endpoint="realtime"' in name]


def test_the_backlog_rises_with_queued_requests_and_falls_back_to_0(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "in.csv").write_text("1\n")
    count = 8
    for i in range(count):
        gw.invoke("slow", str(folder / "in.csv"), InferenceId=f"m-{i}")
    busy: list[tuple[float, float, float]] = []

    def seen_busy() -> tuple[float, float, float] | None:
        sample = gauges(gw, "slow")
        busy.append(sample)
        return sample if sample[0] > 0 else None

    backlog, per_instance, age = wait_until(seen_busy, timeout=30, what="a backlog")
    assert 0 < backlog <= count
    assert per_instance == backlog / INSTANCES
    assert age > 0
    assert gauges(gw, "idle") == (0.0, 0.0, 0.0)  # one endpoint's queue is its own

    def drained() -> bool:
        sample = gauges(gw, "slow")
        busy.append(sample)
        return sample == (0.0, 0.0, 0.0)

    wait_until(drained, timeout=90, what="the backlog to drain")
    assert all(s[1] == s[0] / INSTANCES for s in busy), busy
    assert all(s[2] > 0 for s in busy if s[0] > 0), busy
    assert sorted((folder / "out").iterdir()) == sorted(
        folder / "out" / f"m-{i}.out" for i in range(count)
    )
