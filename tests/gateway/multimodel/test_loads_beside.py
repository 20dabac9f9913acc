"""Loads beside warm traffic on a real ``tandem serve`` with a one-worker scikit-learn container.

Ordering, not timing: a load held open by its ``model_fn`` until the test lets it go must not
hold up requests for a loaded model (they answer while it is still loading), and two loads that
each wait for the other to start succeed only if they run at once (``TANDEM_MODEL_LOADS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("sklearn")

from tests.containers.test_workers_router import RENDEZVOUS_FN
from tests.gateway.multimodel.conftest import Site, serve_site, sklearn_multi
from tests.gateway.multimodel.stores import (
    models_of,
    pack,
    synthetic,
    train_classifier,
    wait_for,
    write_spec,
)

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

#: A load that waits until the test creates ``open`` in ``folder`` (or gives up after 60 s).
GATED_FN = """
import time, joblib
from pathlib import Path

def model_fn(model_dir):
    here = Path({folder!r})
    (here / "started").write_text("")
    deadline = time.monotonic() + 60
    while not (here / "open").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("never let go")
        time.sleep(0.01)
    return joblib.load(f"{{model_dir}}/model.joblib")
"""
X = synthetic(3, seed=7)


class Beside(Site):
    def predict(self, target: str) -> list[Any]:
        return self.predict_on("beside", target)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Beside]:
    root = tmp_path_factory.mktemp("beside")
    store, marks = root / "store", root / "marks"
    marks.mkdir()
    models = {f"warm-{i}.tar.gz": train_classifier(i) for i in range(3)}
    for target, model in models.items():
        pack(store / target, model)
    models["gated.tar.gz"] = train_classifier(10)
    pack(store / "gated.tar.gz", models["gated.tar.gz"], code=GATED_FN.format(folder=str(marks)))
    for seed, (me, other) in enumerate([("left", "right"), ("right", "left")]):
        models[f"{me}.tar.gz"] = train_classifier(20 + seed)
        code = RENDEZVOUS_FN.format(folder=str(marks), me=me, other=other)
        pack(store / f"{me}.tar.gz", models[f"{me}.tar.gz"], code=code)
    multi = sklearn_multi("./store", {"TANDEM_INTRA_OP_THREADS": "1"})
    spec = write_spec(root, "beside", "Serial", {"multi": multi})
    loads = {"TANDEM_MODEL_LOADS": "2"}
    with serve_site(Beside, root, [spec], models, X, env=loads, method="predict") as site:
        yield site


def test_requests_for_loaded_models_answer_while_another_model_loads(site: Beside) -> None:
    warm = [t for t in site.models if t.startswith("warm-")]
    for target in warm:
        assert site.predict(target) == site.want(target)
    with ThreadPoolExecutor(1) as pool:
        gated = pool.submit(site.predict, "gated.tar.gz")
        started = site.marks / "started"
        wait_for(lambda: started.exists() or gated.done(), 60, "the gated load to start")
        assert not gated.done(), gated.exception()
        answers = [site.predict(t) for t in warm * 5]
        # Every warm answer came back while the load was still held in its model_fn.
        still = {m["TargetModel"]: m for m in models_of(site.url, "beside", "multi")["Models"]}
        assert not gated.done() and still["gated.tar.gz"]["Loading"]
        (site.marks / "open").write_text("")
        assert gated.result(timeout=120) == site.want("gated.tar.gz")
    assert answers == [site.want(t) for t in warm * 5]


def test_two_loads_in_one_worker_run_at_once(site: Beside) -> None:
    targets = ["left.tar.gz", "right.tar.gz"]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(site.predict, targets))
    assert answers == [site.want(t) for t in targets]
