"""A multi-model container on two worker processes (``containers.router``), as a real process.

Loads of two models run at once (each ``model_fn`` waits for the other one to start: loads one
after the other would fail), each model is in exactly one worker (asked of the workers
themselves on their private ports), and the memory limit counts every worker.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

pytest.importorskip("sklearn")

from tests.containers.conftest import Container, StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier

pytestmark = pytest.mark.sklearn

TWO_WORKERS = {
    "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
    "TANDEM_INTRA_OP_THREADS": "1",
    "TANDEM_INTER_OP_THREADS": "1",
}

#: ``model_fn`` that notes its pid, then waits for the other model's load to start.
RENDEZVOUS_FN = """
import os, time, joblib
from pathlib import Path

def model_fn(model_dir):
    here = Path({folder!r})
    (here / {me!r}).write_text(str(os.getpid()))
    deadline = time.monotonic() + 20
    while not (here / {other!r}).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the other load never started: loads ran one at a time")
        time.sleep(0.01)
    return joblib.load(f"{{model_dir}}/model.joblib")
"""


def workers_listing(container: Container) -> dict[int, set[str]]:
    """Each worker process (by pid) and the models it holds, from its own private port."""
    held: dict[int, set[str]] = {}
    for child in psutil.Process(container.proc.pid).children(recursive=True):
        ports = [c.laddr.port for c in child.net_connections("tcp") if c.status == "LISTEN"]
        if not ports:
            continue
        (port,) = ports
        answer = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10)
        assert answer.status_code == 200, answer.text
        held[child.pid] = {m["modelName"] for m in answer.json()["models"]}
    return held


def load(url: str, name: str, model_dir: Path) -> httpx.Response:
    return httpx.post(url + "/models", json={"model_name": name, "url": str(model_dir)}, timeout=60)


def test_two_loads_overlap_and_each_model_lives_in_one_worker(
    start_container: StartContainer, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    dirs = {
        name: package(
            tmp_path / name,
            train_classifier(seed),
            code=RENDEZVOUS_FN.format(folder=str(marks), me=name, other=other),
        )
        for seed, (name, other) in enumerate([("left", "right"), ("right", "left")])
    }
    server = start_container("sklearn", multi_model=True, env=TWO_WORKERS)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda n: load(server.url, n, dirs[n]), dirs))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    pids = {name: int((marks / name).read_text()) for name in dirs}
    assert pids["left"] != pids["right"], "both models loaded in the same process"
    # The router's load log: both loads started before either ended.
    lines = [
        line
        for line in server.log_text().splitlines()
        if "model left" in line or "model right" in line
    ]
    starts = [i for i, line in enumerate(lines) if "loading model" in line]
    ends = [i for i, line in enumerate(lines) if "loaded model" in line and "in worker" in line]
    assert len(starts) == 2 and len(ends) == 2 and max(starts) < min(ends), lines

    held = workers_listing(server)
    assert len(held) == 2
    assert sorted(map(sorted, held.values())) == [["left"], ["right"]]
    assert held[pids["left"]] == {"left"} and held[pids["right"]] == {"right"}
    listed = httpx.get(server.url + "/models").json()["models"]
    assert {m["modelName"] for m in listed} == {"left", "right"}

    # More models spread over the workers; none is in two; each answers through the router.
    plain = {f"m{i}": package(tmp_path / f"m{i}", train_classifier(10 + i)) for i in range(4)}
    for name, model_dir in plain.items():
        answer = load(server.url, name, model_dir)
        assert answer.status_code == 200
        # What the load cost the worker's CPU, passed on by the router (eviction weighs it).
        assert 0 < answer.json()["loadCpuSeconds"] < 60, answer.text
    held = workers_listing(server)
    everywhere = [name for names in held.values() for name in names]
    assert sorted(everywhere) == sorted([*dirs, *plain])
    assert all(len(names) >= 2 for names in held.values()), held
    x = synthetic(5, seed=3)
    want = train_classifier(12).predict(x).tolist()
    answer = httpx.post(
        server.url + "/models/m2/invoke", content=csv_body(x), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == want
    assert httpx.delete(server.url + "/models/m2").status_code == 200
    assert "m2" not in {n for names in workers_listing(server).values() for n in names}
    gone = httpx.post(server.url + "/models/m2/invoke", content=csv_body(x))
    assert gone.status_code == 404 and gone.json()["error"] == "model_not_found"


def test_the_memory_limit_counts_every_worker(
    start_container: StartContainer, tmp_path: Path
) -> None:
    """A limit every process is under alone, but not all together: the load is 507."""
    server = start_container("sklearn", multi_model=True, env=TWO_WORKERS)
    tree = psutil.Process(server.proc.pid)
    workers = [c.memory_info().rss for c in tree.children(recursive=True)]
    total = tree.memory_info().rss + sum(workers)
    # Each worker's own memory plus the model fits with room to spare; the container's does not.
    limit_mb = (total - min(workers) // 2) / 2**20
    tight = start_container(
        "sklearn", multi_model=True, env={**TWO_WORKERS, "TANDEM_MEMORY_LIMIT_MB": f"{limit_mb}"}
    )
    refused = load(tight.url, "m", package(tmp_path / "m", train_classifier(1)))
    assert refused.status_code == 507, refused.text
    assert refused.json()["error"] == "insufficient_memory"
    assert httpx.get(tight.url + "/models").json() == {"models": []}


def test_metrics_of_both_workers_merge_into_one_valid_text(start_container: StartContainer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = start_container("sklearn", multi_model=True, env=TWO_WORKERS)
    answer = httpx.get(server.url + "/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    families = list(text_string_to_metric_families(answer.text))
    names = [family.name for family in families]
    assert names and len(names) == len(set(names))  # each family once, not once per worker
    workers = {s.labels.get("worker") for f in families for s in f.samples}
    assert workers <= {"0", "1"}
