"""Three ``tandem serve`` instances behind a real HAProxy: model affinity, spill-over, failover."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")

from sklearn.naive_bayes import GaussianNB

from gateway.ops.haproxy import AFFINITY_BACKEND, Checks, parse_instances, render
from pipelines.spec import load_spec
from tests.gateway.harness import sagemaker_client
from tests.gateway.multimodel.stores import (
    csv_body,
    gateway,
    loaded,
    pack,
    predictions,
    synthetic,
    write_spec,
)
from tests.gateway.ops.fleet import Stream, gateway_process, server_status, zipf_stream
from tests.support import free_port, running, wait_until

pytestmark = [
    pytest.mark.sklearn,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("haproxy") is None,
        reason="haproxy is not installed (apt-get install haproxy; scripts/ci-deps.sh does it)",
    ),
]

MODELS = 300
ENDPOINT = "fleet"
CONTAINER = "models"
X = synthetic(3, seed=7)
BODY = csv_body(X)


@dataclass
class Fleet:
    urls: list[str]
    states: list[Path]
    balancer: str
    stats: Path
    models: dict[str, Any]
    client: Any

    def send(self, target: str) -> str | None:
        answer = self.client.invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="text/csv", TargetModel=target, Body=BODY
        )
        got = predictions(answer["Body"].read())
        want = self.models[target].predict_proba(X).tolist()
        return None if got == want else f"{target}: wrong prediction {got} != {want}"

    def placement(self, alive: list[int]) -> dict[str, set[int]]:
        """Model -> the instances that hold it loaded."""
        where: dict[str, set[int]] = {}
        for i in alive:
            for target in loaded(self.urls[i], ENDPOINT, CONTAINER):
                where.setdefault(target, set()).add(i)
        return where


def tiny_model(seed: int) -> GaussianNB:
    """A real classifier that trains in a millisecond: 300 of them stay cheap on 2 cores."""
    x = synthetic(60, seed)
    return GaussianNB().fit(x, x[:, 0] + 0.5 * x[:, 1] > 0)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("fleet")
    models = {}
    for seed in range(MODELS):
        target = f"m{seed:03d}.tar.gz"
        models[target] = tiny_model(seed)
        pack(root / "store" / target, models[target])
    spec = write_spec(
        root,
        ENDPOINT,
        "Serial",
        {
            CONTAINER: {
                "framework": "sklearn",
                "mode": "MultiModel",
                "model_data": "./store",
                "environment": {
                    "TANDEM_SKLEARN_METHOD": "predict_proba",
                    "TANDEM_INTRA_OP_THREADS": "1",
                },
            }
        },
    )
    with ExitStack() as stack:
        urls, states = [], []
        for i in range(3):
            folder = root / f"instance-{i}"
            folder.mkdir()
            url, _log = stack.enter_context(gateway(folder, spec))
            urls.append(url)
            states.append(folder / "state")
        port, stats = free_port(), root / "haproxy.sock"
        config = render(
            [load_spec(spec)],
            parse_instances([u.removeprefix("http://") for u in urls]),
            bind=f"127.0.0.1:{port}",
            checks=Checks(interval=0.5, fall=2, rise=2, timeout=1.0),
            stats_socket=str(stats),
        )
        (root / "haproxy.cfg").write_text(config)
        balancer = f"http://127.0.0.1:{port}"
        haproxy = ["haproxy", "-db", "-f", str(root / "haproxy.cfg")]
        stack.enter_context(running(haproxy, url=balancer, log=root / "haproxy.log", timeout=30))
        client = sagemaker_client(balancer)
        yield Fleet(urls, states, balancer, stats, models, client)
        # A graceful stop unloads hundreds of models one by one; this test is not about that.
        for state in states:
            with contextlib.suppress(LookupError):
                gateway_process(state).kill()


def test_models_stick_to_few_instances_and_survive_losing_one(fleet: Fleet) -> None:
    targets = list(fleet.models)
    # Warm-up, then a Zipf stream: a few hot models, a long tail of cold ones.
    first = Stream(fleet.send, workers=4)
    first.run(zipf_stream(targets, 900, seed=1))
    failures = [o.detail for o in first.outcomes if not o.ok]
    assert not failures, failures[:5]

    requests = Counter(o.target for o in first.outcomes)
    where = fleet.placement([0, 1, 2])
    assert set(where) == set(requests), "every requested model is loaded somewhere"
    hot = {t for t, _ in requests.most_common(15)}
    spread = {t: len(s) for t, s in where.items()}
    # Affinity: apart from the hot models that spill over, a model lives on one or two instances
    # (balancing each request anew would spread any model asked for often over all three).
    assert all(n <= 2 for t, n in spread.items() if t not in hot), {
        t: (n, requests[t]) for t, n in spread.items() if n > 2 and t not in hot
    }
    # Bounded load: the hottest model is on more than one instance.
    (hottest, _), *_ = requests.most_common(1)
    assert spread[hottest] >= 2

    # Kill the instance holding most models alone, in the middle of a second stream.
    alone = Counter(next(iter(s)) for s in where.values() if len(s) == 1)
    victim = alone.most_common(1)[0][0]
    survivors = [i for i in range(3) if i != victim]
    only_there = {t for t, s in where.items() if s == {victim}}
    process = gateway_process(fleet.states[victim])
    name = f"tandem-{victim + 1}"
    second = Stream(fleet.send, workers=4)
    with ThreadPoolExecutor(1) as background:
        runner = background.submit(second.run, zipf_stream(targets, 5000, seed=2))
        try:
            wait_until(lambda: second.done() >= 150, timeout=60, what="150 requests in")
            process.send_signal(signal.SIGKILL)
            wait_until(
                lambda: server_status(fleet.stats, AFFINITY_BACKEND).get(name) == "DOWN",
                timeout=30,
                what=f"HAProxy marking {name} DOWN",
            )
            down = time.monotonic()  # the failover window is over
            wait_until(lambda: len(second.after(down)) >= 600, timeout=120, what="600 more")
        finally:
            second.stop()  # on a failure too: never wait for the whole stream
        runner.result()

    after = second.after(down)
    failed = [o.detail for o in after if not o.ok]
    assert not failed, failed[:5]
    # The dead instance's models, asked for again, are now served (correctly) by the others.
    moved = only_there & {o.target for o in after}
    assert moved, "the stream asked for some of the killed instance's models"
    now = fleet.placement(survivors)
    assert all(now.get(t) for t in moved), [t for t in moved if not now.get(t)]
