"""Instance choice on a real ``tandem serve``: least outstanding requests, random, model affinity.

Real container processes over real HTTP, driven by boto3. A request held open by the contract
server's gate (``CONTRACT_GATE``) makes one instance busy for as long as the test wants, so
nothing depends on timing; ``GET /calls`` on each container counts what reached it.
"""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway.lifecycle.conftest import clients, container, wait_status
from tests.gateway.lifecycle.test_variants import gateway as gateway  # the fixture
from tests.support import wait_until

pytestmark = pytest.mark.slow


def instance_urls(url: str, name: str) -> list[str]:
    (variant,) = httpx.get(f"{url}/endpoints/{name}").json()["ProductionVariants"]
    return [instance[0]["Url"] for instance in variant["Instances"]]


def calls(urls: list[str]) -> list[int]:
    out = []
    for url in urls:
        with urllib.request.urlopen(f"{url}/calls", timeout=5) as answer:
            out.append(int(answer.read()))
    return out


def two_instances(control: Any, name: str, gate: Path, **variant: Any) -> None:
    control.create_model(ModelName=name, PrimaryContainer=container("|x", CONTRACT_GATE=str(gate)))
    entry = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 2}
    control.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[{**entry, **variant}]
    )
    control.create_endpoint(EndpointName=name, EndpointConfigName=name)


def hold_one(runtime: Any, url: str, name: str) -> tuple[threading.Thread, list[bytes], int]:
    """A request that stays in flight on one instance until the gate opens; that instance."""
    answers: list[bytes] = []

    def slow() -> None:
        got = runtime.invoke_endpoint(EndpointName=name, Body=b"gate", ContentType="text/plain")
        answers.append(got["Body"].read())

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    urls = instance_urls(url, name)

    def arrived() -> list[int] | None:
        counts = calls(urls)
        return counts if sum(counts) == 1 else None

    return thread, answers, wait_until(arrived, what="the slow call").index(1)


def test_a_fast_request_goes_around_a_slow_one_and_random_does_not(
    gateway: str, tmp_path: Path
) -> None:
    control, runtime = clients(gateway)
    gate = tmp_path / "gate"
    two_instances(control, "lor", gate)
    two_instances(control, "rand", gate, RoutingConfig={"RoutingStrategy": "RANDOM"})
    wait_status(control, "lor", "InService")
    wait_status(control, "rand", "InService")
    held = [hold_one(runtime, gateway, name) for name in ("lor", "rand")]
    for name in ("lor", "rand"):
        for _ in range(20):
            runtime.invoke_endpoint(EndpointName=name, Body=b"fast", ContentType="text/plain")
    (_, _, busy_lor), (_, _, busy_rand) = held
    lor = calls(instance_urls(gateway, "lor"))
    assert lor[busy_lor] == 1 and lor[1 - busy_lor] == 20  # never behind the slow one
    rand = calls(instance_urls(gateway, "rand"))
    assert rand[busy_rand] > 1 and sum(rand) == 21  # all 20 elsewhere: a 1 in 2**20 chance
    gate.touch()
    for thread, answers, _ in held:
        thread.join(timeout=30)
        assert answers == [b"gate|x"]


@pytest.mark.sklearn
def test_a_multimodel_variant_loads_each_model_once_across_its_instances(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sklearn")
    from tests.gateway.multimodel import stores

    targets = [f"customer-{k}.tar.gz" for k in range(11)]  # odd: round robin would alternate
    for seed, target in enumerate(targets):
        stores.pack(tmp_path / "store" / target, stores.train_classifier(seed))
    spec = {
        "name": "tenants",
        "instance_count": 2,
        "containers": [
            {
                "framework": "sklearn",
                "mode": "MultiModel",
                "model_data": "./store",
                "environment": {"TANDEM_INTRA_OP_THREADS": "1"},
            }
        ],
    }
    (tmp_path / "tenants.yaml").write_text(yaml.safe_dump(spec))
    body = stores.csv_body(stores.synthetic(2, seed=1))
    with stores.gateway(tmp_path, tmp_path / "tenants.yaml") as (url, _):
        _, runtime = clients(url)
        for _ in range(3):  # each model asked for three times, the models interleaved
            for target in targets:
                runtime.invoke_endpoint(
                    EndpointName="tenants", Body=body, ContentType="text/csv", TargetModel=target
                )
        described = httpx.get(f"{url}/endpoints/tenants/models").json()["Containers"]
    held = [{m["TargetModel"] for m in c["Models"] if m["Loaded"]} for c in described]
    assert len(held) == 2 and all(held), held  # both instances hold some
    assert sorted(held[0] | held[1]) == sorted(targets) and not held[0] & held[1]  # one copy
