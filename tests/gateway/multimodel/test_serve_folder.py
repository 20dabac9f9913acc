"""``tandem serve`` with MultiModel scikit-learn containers over a folder store, through boto3."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest

pytest.importorskip("sklearn")

from tests.gateway.multimodel import archives
from tests.gateway.multimodel.conftest import Site, big_store, serve_site, sklearn_multi
from tests.gateway.multimodel.stores import (
    SLOW_MODEL_FN,
    loaded,
    metric,
    models_of,
    pack,
    predictions,
    synthetic,
    train_classifier,
    wait_for,
    write_spec,
)

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

SMALL = ["Houston_TX.tar.gz", "team/Austin.tar.gz", "pinned.tar.gz", "crowd.tar.gz"]
SMALL += ["Dallas.tar.gz"]
BIG = [f"big-{i}.tar" for i in range(8)]
MAX_MODEL_BYTES = 100 * 2**20
X = synthetic(6, seed=42)


class Houses(Site):
    """The ``houses`` endpoint's ``multi`` container by default."""

    def invoke(self, target: str | None, container: str = "multi", endpoint: str = "houses") -> Any:
        where = {"TargetContainerHostname": container} if endpoint == "houses" else {}
        return self.invoke_on(endpoint, target, **where)

    def predict(self, target: str, **where: str) -> list[Any]:
        return predictions(self.invoke(target, **where)["Body"].read())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Houses]:
    root = tmp_path_factory.mktemp("mme")
    store, big = root / "store", root / "bigstore"
    models: dict[str, Any] = {}
    for seed, target in enumerate(SMALL):
        models[target] = train_classifier(seed)
        pack(store / target, models[target])
    models["slow.tar.gz"] = train_classifier(9)
    pack(store / "slow.tar.gz", models["slow.tar.gz"], code=SLOW_MODEL_FN.format(seconds=3))
    # A load of a second: the 20 concurrent first requests for it surely overlap.
    pack(store / "crowd.tar.gz", models["crowd.tar.gz"], code=SLOW_MODEL_FN.format(seconds=1))
    pack(root / "single.tar.gz", train_classifier(7))
    models["single"] = train_classifier(7)
    big_one = big_store(big, ["pinned-big.tar", *BIG])
    models.update(dict.fromkeys(BIG, big_one))
    # Probabilities differ from model to model, so a wrong model could not pass for the right one.
    one_thread = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_SKLEARN_METHOD": "predict_proba"}
    houses = write_spec(
        root,
        "houses",
        "Direct",
        {
            "multi": sklearn_multi("./store", one_thread, preload=["pinned.tar.gz"]),
            "single": {
                "framework": "sklearn",
                "model_data": "./single.tar.gz",
                "environment": one_thread,
            },
            "nocache": sklearn_multi(
                "./store", one_thread, model_cache="Disabled", load_wait_timeout=1
            ),
        },
    )
    tight = write_spec(
        root,
        "tight",
        "Serial",
        {
            "big": sklearn_multi(
                str(big),
                one_thread,
                memory_limit="400MiB",
                disk_cache_limit="150MiB",
                preload=["pinned-big.tar"],
            )
        },
    )
    env = {"TANDEM_MAX_MODEL_BYTES": str(MAX_MODEL_BYTES)}
    with serve_site(Houses, root, [houses, tight], models, X, env=env) as site:
        yield site


def test_cold_then_warm_invocations(site: Houses) -> None:
    misses = metric(site.url, "tandem_model_cache_misses_total", container="multi")
    hits = metric(site.url, "tandem_model_cache_hits_total", container="multi")
    assert "Houston_TX.tar.gz" not in loaded(site.url, "houses", "multi")
    cold = site.invoke("Houston_TX.tar.gz")
    assert predictions(cold["Body"].read()) == site.want("Houston_TX.tar.gz")
    assert site.predict("Houston_TX.tar.gz") == site.want("Houston_TX.tar.gz")
    assert site.predict("team/Austin.tar.gz") == site.want("team/Austin.tar.gz")
    assert metric(site.url, "tandem_model_cache_misses_total", container="multi") == misses + 2
    assert metric(site.url, "tandem_model_cache_hits_total", container="multi") == hits + 1
    now = loaded(site.url, "houses", "multi")
    assert {"Houston_TX.tar.gz", "team/Austin.tar.gz", "pinned.tar.gz"} <= set(now)
    houston = now["Houston_TX.tar.gz"]
    assert houston["DiskBytes"] > 0 and houston["LastUsed"] and not houston["Pinned"]
    assert houston["ContainerModelName"].startswith("Houston_TX.tar.gz-")
    assert now["pinned.tar.gz"]["Pinned"]
    assert metric(site.url, "tandem_loaded_model_count", container="multi") == len(now)
    assert metric(site.url, "tandem_container_memory_bytes", container="multi") > 0


def test_direct_endpoint_mixes_single_and_multi_model_containers(site: Houses) -> None:
    single = site.invoke(None, container="single")
    assert predictions(single["Body"].read()) == site.want("single")
    with pytest.raises(site.client.exceptions.ValidationError, match="not a multi-model"):
        site.invoke("Houston_TX.tar.gz", container="single")
    with pytest.raises(site.client.exceptions.ValidationError, match="Target-Model header"):
        site.invoke(None, container="multi")


def test_twenty_concurrent_first_requests_share_one_load(site: Houses) -> None:
    growth = {
        "tandem_model_downloading_seconds_count": 1,
        "tandem_model_loading_seconds_count": 1,
        "tandem_model_cache_misses_total": 20,  # all 20 arrived during the one (1 s) load
        "tandem_model_cache_hits_total": 0,
    }
    before = {name: metric(site.url, name, container="multi") for name in growth}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: site.predict("crowd.tar.gz"), range(20)))
    assert answers == [site.want("crowd.tar.gz")] * 20
    after = {name: metric(site.url, name, container="multi") for name in growth}
    assert {name: after[name] - before[name] for name in growth} == growth


def test_a_model_added_under_the_prefix_is_served_without_restart(site: Houses) -> None:
    new = train_classifier(21)
    pack(site.root / "store" / "new" / "Austin_TX.tar.gz", new)
    assert site.predict("new/Austin_TX.tar.gz") == new.predict_proba(X).tolist()


@pytest.mark.parametrize(
    "target",
    ["../single.tar.gz", "/etc/passwd", "team/../../single.tar.gz", "%2e%2e/single.tar.gz",
     "team//Austin.tar.gz", "s3://elsewhere/x.tar.gz", "a\\..\\b", "x" * 1025],
)  # fmt: skip
def test_bad_target_models_are_validation_errors(site: Houses, target: str) -> None:
    with pytest.raises(site.client.exceptions.ValidationError, match=r"(?i)targetModel"):
        site.invoke(target)


def test_broken_artifacts_fail_only_their_own_request(site: Houses) -> None:
    store = site.root / "store"
    archives.escaping(store / "evil.tar.gz")
    archives.with_link(store / "link.tar.gz")
    archives.corrupt(store / "corrupt.tar.gz")
    archives.bomb(store / "bomb.tar.gz", MAX_MODEL_BYTES + 1)
    archives.write_tar(store / "empty.tar.gz", {"README": b"no model in here"})
    refused = {
        "evil.tar.gz": "outside the model dir",
        "link.tar.gz": "link",
        "corrupt.tar.gz": "cannot unpack",
        "bomb.tar.gz": "size cap",
        "missing.tar.gz": "no model at",
    }
    for target, why in refused.items():
        with pytest.raises(site.client.exceptions.ValidationError, match=why):
            site.invoke(target)
    with pytest.raises(site.client.exceptions.ModelError, match="Failed to load model empty"):
        site.invoke("empty.tar.gz")
    assert not (site.root / "escaped.txt").exists()
    cache = site.root / "state" / "endpoints" / "houses" / "houses" / "multi" / "models"
    # Nothing half-written stays: a refused model's folder is moved aside, then deleted.
    wait_for(lambda: not [p for p in cache.iterdir() if p.name.startswith(".")], what="clean")
    names = {m["TargetModel"] for m in models_of(site.url, "houses", "multi")["Models"]}
    assert not names & {*refused, "empty.tar.gz"}
    assert site.predict("Houston_TX.tar.gz") == site.want("Houston_TX.tar.gz")


def test_slow_loads_answer_429_and_go_on_and_disabled_cache_unloads(site: Houses) -> None:
    with pytest.raises(site.client.exceptions.ModelNotReadyException, match="still loading"):
        site.invoke("slow.tar.gz", container="nocache")
    wait_for(lambda: "slow.tar.gz" in loaded(site.url, "houses", "nocache"), what="slow loaded")
    assert site.predict("slow.tar.gz", container="nocache") == site.want("slow.tar.gz")
    wait_for(lambda: not loaded(site.url, "houses", "nocache"), what="unloaded after use")
    assert site.predict("Houston_TX.tar.gz", container="nocache") == site.want("Houston_TX.tar.gz")
    wait_for(lambda: not loaded(site.url, "houses", "nocache"), what="unloaded after use")


def test_eviction_by_real_memory_keeps_pinned_models_and_fails_nothing(site: Houses) -> None:
    before = models_of(site.url, "tight", "big")
    pinned = loaded(site.url, "tight", "big")["pinned-big.tar"]
    order = [BIG[i % len(BIG)] for i in range(24)]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda t: site.predict(t, endpoint="tight"), order))
    want = site.want(BIG[0])
    assert answers == [want] * len(order)
    after = models_of(site.url, "tight", "big")
    now = loaded(site.url, "tight", "big")
    assert metric(site.url, "tandem_model_evictions_total", container="big", reason="memory") > 0
    assert metric(site.url, "tandem_model_evictions_total", container="big", reason="disk") > 0
    assert 1 < len(now) < len(BIG) + 1
    assert now["pinned-big.tar"]["MemoryBytes"] == pinned["MemoryBytes"]  # never reloaded
    assert after["MemoryLimitBytes"] == before["MemoryLimitBytes"]
    # Eviction keeps the container at its limit; what requests in flight and the allocator hold
    # for a moment (a few MB on a busy machine) is outside the gateway's reach, hence the 5%.
    assert after["MemoryUsedBytes"] <= after["MemoryLimitBytes"] * 1.05
    assert after["DiskCacheBytes"] <= max(
        after["DiskCacheLimitBytes"],
        sum(m["DiskBytes"] or 0 for m in after["Models"] if m["Loaded"]),
    )


def test_evicting_a_model_replaced_in_place(site: Houses) -> None:
    assert site.predict("Dallas.tar.gz") == site.want("Dallas.tar.gz")
    replacement = train_classifier(33)
    want_new = replacement.predict_proba(X).tolist()
    assert want_new != site.want("Dallas.tar.gz")
    pack(site.root / "store" / "Dallas.tar.gz", replacement)
    assert site.predict("Dallas.tar.gz") == site.want("Dallas.tar.gz")  # still the cached one
    answer = httpx.delete(f"{site.url}/endpoints/houses/models/Dallas.tar.gz?container=multi")
    assert answer.status_code == 200, answer.text
    assert answer.json()["Containers"]["multi"] == {"Unloaded": True, "Deleted": True}
    assert site.predict("Dallas.tar.gz") == want_new
    gone = httpx.delete(f"{site.url}/endpoints/houses/models/never.tar.gz")
    assert gone.status_code == 404 and gone.headers["x-amzn-ErrorType"] == "ResourceNotFound"
    bad = httpx.delete(f"{site.url}/endpoints/houses/models/team/%2e%2e/%2e%2e/x")
    assert bad.status_code == 400


def test_a_restarted_container_reloads_its_models(site: Houses) -> None:
    assert site.predict("Houston_TX.tar.gz") == site.want("Houston_TX.tar.gz")
    container = next(
        p
        for p in psutil.process_iter()
        if _env(p).get("TANDEM_CONTAINER") == "houses/multi" and "containers" in p.cmdline()
    )
    container.send_signal(signal.SIGKILL)
    wait_for(
        lambda: (
            httpx.get(f"{site.url}/endpoints/houses").json()["Containers"][0]["Restarts"] >= 1
            and httpx.get(f"{site.url}/ping").status_code == 200
        ),
        timeout=60,
        what="container restarted",
    )
    wait_for(lambda: "pinned.tar.gz" in loaded(site.url, "houses", "multi"), what="re-pinned")
    assert site.predict("Houston_TX.tar.gz") == site.want("Houston_TX.tar.gz")
    assert set(loaded(site.url, "houses", "multi")) == {"pinned.tar.gz", "Houston_TX.tar.gz"}
    assert site.predict("pinned.tar.gz") == site.want("pinned.tar.gz")


def _env(proc: psutil.Process) -> dict[str, str]:
    try:
        return dict(proc.environ())
    except (psutil.Error, OSError):
        return {}
