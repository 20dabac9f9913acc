"""Production variants, shadows and instance counts on a real ``tandem serve``, through boto3.

Each variant runs the standard-library contract server with its own ``CONTRACT_MARKER``, so an
answer says which variant made it; ``GET /calls`` on a container counts what reached it.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import clients, container, wait_status
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        PYTHON,
        "-m",
        "gateway",
        "serve",
        "--state-dir",
        str(tmp_path / "s"),
        "--port",
        str(port),
    ]
    with running(args, url=url, log=tmp_path / "gateway.log", timeout=60):
        yield url


def create(control: Any, name: str, variants: list[tuple[str, float]], **config: Any) -> None:
    """A model per variant (answering ``|variant``), a config with those weights, the endpoint."""
    entries = []
    for variant, weight in variants:
        control.create_model(
            ModelName=f"{name}-{variant}", PrimaryContainer=container(f"|{variant}")
        )
        entries.append(
            {
                "VariantName": variant,
                "ModelName": f"{name}-{variant}",
                "InitialVariantWeight": weight,
                "InitialInstanceCount": 1,
            }
        )
    control.create_endpoint_config(EndpointConfigName=name, ProductionVariants=entries, **config)
    control.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_status(control, name, "InService")


def answered_by(runtime: Any, name: str, **extra: Any) -> tuple[str, str]:
    """(the variant the body names, the variant the header names) of one request."""
    answer = runtime.invoke_endpoint(
        EndpointName=name, Body=b"x", ContentType="text/plain", **extra
    )
    body = answer["Body"].read().decode()
    return body.split("|", 1)[1], answer["InvokedProductionVariant"]


def binomial_bounds(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def test_weights_split_traffic_and_target_variant_wins(gateway: str) -> None:
    control, runtime = clients(gateway)
    create(control, "ab", [("A", 3.0), ("B", 1.0)])
    n = 2000
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: answered_by(runtime, "ab"), range(n)))
    assert all(body == header for body, header in answers), "the header names who answered"
    counts = Counter(body for body, _ in answers)
    low, high = binomial_bounds(n, 0.75)
    assert low <= counts["A"] <= high, counts
    assert counts["A"] + counts["B"] == n
    for _ in range(50):
        assert answered_by(runtime, "ab", TargetVariant="B") == ("B", "B")
    with pytest.raises(ClientError) as info:
        answered_by(runtime, "ab", TargetVariant="C")
    message = info.value.response["Error"]["Message"]
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "C" in message and "A, B" in message

    described = control.describe_endpoint(EndpointName="ab")
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == {"A": 3.0, "B": 1.0}


def test_weights_moved_under_load_fail_nothing_then_only_the_second_answers(gateway: str) -> None:
    control, runtime = clients(gateway)
    create(control, "move", [("A", 1.0), ("B", 1.0)])
    stop = threading.Event()
    failures: list[str] = []
    seen: list[str] = []

    def load() -> None:
        while not stop.is_set():
            try:
                seen.append(answered_by(runtime, "move")[0])
            except Exception as exc:  # every failure is counted, none is expected
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(seen) > 100 or None, timeout=30, what="load running")
        control.update_endpoint_weights_and_capacities(
            EndpointName="move",
            DesiredWeightsAndCapacities=[
                {"VariantName": "A", "DesiredWeight": 0.0},
                {"VariantName": "B", "DesiredWeight": 1.0},
            ],
        )
        wait_status(control, "move", "InService")
        mark = len(seen)
        wait_until(lambda: len(seen) > mark + 200 or None, timeout=30, what="load after")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert set(seen[mark + 8 :]) == {"B"}, "after the change only B is drawn"
    # A weight of 0 leaves the draw, not TargetVariant.
    assert answered_by(runtime, "move", TargetVariant="A") == ("A", "A")
    described = control.describe_endpoint(EndpointName="move")
    summary = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert summary["A"]["CurrentWeight"] == 0.0 and summary["A"]["DesiredWeight"] == 0.0
    assert summary["B"]["CurrentWeight"] == 1.0


def test_a_shadow_gets_its_share_and_never_answers(gateway: str) -> None:
    control, runtime = clients(gateway)
    for variant in ("prod", "shadow"):
        control.create_model(ModelName=f"s-{variant}", PrimaryContainer=container(f"|{variant}"))
    control.create_endpoint_config(
        EndpointConfigName="s",
        ProductionVariants=[{"VariantName": "prod", "ModelName": "s-prod"}],
        ShadowProductionVariants=[
            {"VariantName": "shadow", "ModelName": "s-shadow", "InitialVariantWeight": 0.5}
        ],
    )
    control.create_endpoint(EndpointName="s", EndpointConfigName="s")
    wait_status(control, "s", "InService")
    n = 600
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: answered_by(runtime, "s"), range(n)))
    assert set(answers) == {("prod", "prod")}, "answers all come from production"

    described = httpx.get(f"{gateway}/endpoints/s").json()
    (shadow,) = described["ShadowProductionVariants"]
    assert shadow["SamplingPercentage"] == 50.0
    url = shadow["Instances"][0][0]["Url"]

    def calls() -> int:
        with urllib.request.urlopen(f"{url}/calls", timeout=5) as answer:
            return int(answer.read())

    low, high = binomial_bounds(n, 0.5)
    # Copies are sent after the answers: wait until they stop arriving.
    last: list[int] = []

    def settled() -> int | None:
        last.append(calls())
        return last[-1] if len(last) > 3 and last[-1] == last[-4] else None

    got = wait_until(settled, timeout=30, what="shadow copies settled")
    assert low <= got <= high, got
    summary = control.describe_endpoint(EndpointName="s")["ShadowProductionVariants"]
    assert summary[0]["VariantName"] == "shadow"


def test_instance_counts_spread_requests_and_change_live(gateway: str) -> None:
    control, runtime = clients(gateway)
    control.create_model(ModelName="many", PrimaryContainer=container("|x", CONTRACT_MODE="peer"))
    control.create_endpoint_config(
        EndpointConfigName="many",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "many", "InitialInstanceCount": 2}
        ],
    )
    control.create_endpoint(EndpointName="many", EndpointConfigName="many")
    wait_status(control, "many", "InService")

    def urls() -> list[str]:
        (variant,) = httpx.get(f"{gateway}/endpoints/many").json()["ProductionVariants"]
        return [instance[0]["Url"] for instance in variant["Instances"]]

    def counts(found: list[str]) -> list[int]:
        out = []
        for url in found:
            with urllib.request.urlopen(f"{url}/calls", timeout=5) as answer:
                out.append(int(answer.read()))
        return out

    assert len(set(urls())) == 2
    for _ in range(40):
        runtime.invoke_endpoint(EndpointName="many", Body=b"x", ContentType="text/plain")
    # One at a time, both instances are idle for each: least outstanding breaks the tie at random.
    low, high = binomial_bounds(40, 0.5)
    spread = counts(urls())
    assert sum(spread) == 40 and all(low <= n <= high for n in spread), spread
    described = control.describe_endpoint(EndpointName="many")["ProductionVariants"][0]
    assert described["CurrentInstanceCount"] == 2

    control.update_endpoint_weights_and_capacities(
        EndpointName="many",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}],
    )
    wait_status(control, "many", "InService")
    assert len(set(urls())) == 3
    summary = control.describe_endpoint(EndpointName="many")["ProductionVariants"][0]
    assert summary["CurrentInstanceCount"] == 3 and summary["DesiredInstanceCount"] == 3
    control.update_endpoint_weights_and_capacities(
        EndpointName="many",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 1}],
    )
    wait_status(control, "many", "InService")
    assert len(urls()) == 1
    runtime.invoke_endpoint(EndpointName="many", Body=b"x", ContentType="text/plain")


def test_a_spec_file_with_variants_serves_them(tmp_path: Path) -> None:
    import yaml

    def variant(name: str, weight: float) -> dict[str, Any]:
        command = [PYTHON, str(Path(__file__).parents[1] / "contract_server.py")]
        return {
            "name": name,
            "weight": weight,
            "containers": [{"command": command, "environment": {"CONTRACT_MARKER": f"|{name}"}}],
        }

    spec = tmp_path / "ab.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "ab", "variants": [variant("A", 1.0), variant("B", 0.0)]})
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", str(spec), "--state-dir", str(tmp_path / "s"),
            "--port", str(port)]  # fmt: skip
    with running(args, url=url, log=tmp_path / "gateway.log", timeout=60):
        control, runtime = clients(url)
        assert {answered_by(runtime, "ab") for _ in range(20)} == {("A", "A")}
        assert answered_by(runtime, "ab", TargetVariant="B") == ("B", "B")
        variants = control.describe_endpoint(EndpointName="ab")["ProductionVariants"]
        assert [v["VariantName"] for v in variants] == ["A", "B"]
        shown = subprocess.run(
            [PYTHON, "-m", "gateway", "endpoints", "describe", "ab", "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert shown.returncode == 0, shown.stderr
        config = shown.stdout.split("instances (now)")[0]  # the variants, not each instance
        rows = {line.split()[1]: line for line in config.splitlines() if "│ A " in line
                or "│ B " in line}  # fmt: skip
        assert "100%" in rows["A"] and "0%" in rows["B"], shown.stdout


def test_weights_and_counts_survive_a_sigkill(tmp_path: Path) -> None:
    state = tmp_path / "state"

    def serve_args(port: int) -> list[str]:
        return [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_args(port), url=url, log=tmp_path / "first.log", timeout=60) as first:
        control, runtime = clients(url)
        create(control, "kept", [("A", 1.0), ("B", 1.0)])
        control.update_endpoint_weights_and_capacities(
            EndpointName="kept",
            DesiredWeightsAndCapacities=[
                {"VariantName": "A", "DesiredWeight": 0.0},
                {"VariantName": "B", "DesiredInstanceCount": 2},
            ],
        )
        wait_status(control, "kept", "InService")
        first.kill()
        first.wait()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_args(port), url=url, log=tmp_path / "second.log", timeout=60):
        control, runtime = clients(url)
        wait_status(control, "kept", "InService")
        assert {answered_by(runtime, "kept")[0] for _ in range(30)} == {"B"}
        summary = {
            v["VariantName"]: v
            for v in control.describe_endpoint(EndpointName="kept")["ProductionVariants"]
        }
        assert summary["A"]["CurrentWeight"] == 0.0
        assert summary["B"]["CurrentInstanceCount"] == 2
