"""Inference components on a real ``tandem serve``, through the real boto3 clients: boto3's
walk-through (a config without a model, the endpoint, two components of two real scikit-learn
models, each invoked, copies changed, deleted) with no request failing, and a restart that
brings the components back.

Each component's model is trained here with its own offset, so an answer says which model made
it; the copies are real sklearn container processes placed on the endpoint's instances.
"""

from __future__ import annotations

import datetime
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn.linear_model import LinearRegression

from tests.containers.conftest import package_model
from tests.gateway.control.conftest import ROLE, SKLEARN_IMAGE
from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.lifecycle.conftest import CONFIG, KEYS, clients, container, wait_status
from tests.gateway.lifecycle.test_instances_describe import describe_cli
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow

ENV = {
    "TANDEM_INSTANCE_CPUS": "2",
    "TANDEM_INSTANCE_MEMORY_MB": "2048",
    "TANDEM_METRIC_FLUSH_INTERVAL": "1",
    "TANDEM_HELD_WAIT": "120",
}
ROW = b"1.0,2.0\n"


def regression(root: Path, offset: float) -> Path:
    """A model answering ``x0 + x1 + offset`` (so 3 + offset for ``ROW``)."""
    x = np.random.default_rng(0).normal(size=(50, 2))
    model = LinearRegression().fit(x, x.sum(axis=1) + offset)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return package_model(root, {"model.joblib": buffer.getvalue()})


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    return {"small": regression(tmp_path / "a", 0.0), "large": regression(tmp_path / "b", 100.0)}


def serve(tmp_path: Path, state: Path) -> Any:
    port = free_port()
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    env = {**ENV, "TANDEM_MODEL_ROOTS": str(tmp_path)}
    log = tmp_path / f"gateway-{port}.log"
    return running(args, env=env, url=f"http://127.0.0.1:{port}", log=log, timeout=90), port


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    context, port = serve(tmp_path, tmp_path / "state")
    with context:
        yield f"http://127.0.0.1:{port}"


def answer(runtime: Any, component: str) -> float:
    found = runtime.invoke_endpoint(
        EndpointName="ep",
        InferenceComponentName=component,
        Body=ROW,
        ContentType="text/csv",
        Accept="application/json",
    )
    assert found["InvokedProductionVariant"] == "AllTraffic"
    return float(np.ravel(json.loads(found["Body"].read()))[0])


def component_sum(url: str, component: str, metric: str = "NoCapacityInvocationFailures") -> float:
    """A metric of ``component`` summed over the last minutes (by default the requests that
    found no copy)."""
    cw = boto3.client("cloudwatch", endpoint_url=url, config=CONFIG, **KEYS)
    now = datetime.datetime.now(datetime.UTC)
    points = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[{"Name": "InferenceComponentName", "Value": component}],
        StartTime=now - datetime.timedelta(minutes=5),
        EndTime=now + datetime.timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def component_status(control: Any, name: str, wanted: str, timeout: float = 120) -> Any:
    def check() -> Any:
        found = control.describe_inference_component(InferenceComponentName=name)
        return found if found["InferenceComponentStatus"] == wanted else None

    return wait_until(check, timeout=timeout, what=f"component {name} {wanted}")


def setup(control: Any, models: dict[str, Path]) -> None:
    """boto3's walk-through up to two components InService (one copy each)."""
    for name, path in models.items():
        control.create_model(
            ModelName=name,
            PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": str(path)},
            ExecutionRoleArn=ROLE,
        )
    control.create_endpoint_config(
        EndpointConfigName="ic-config",
        ExecutionRoleArn=ROLE,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                "ManagedInstanceScaling": {
                    "Status": "ENABLED",
                    "MinInstanceCount": 1,
                    "MaxInstanceCount": 2,
                },
            }
        ],
    )
    control.create_endpoint(EndpointName="ep", EndpointConfigName="ic-config")
    wait_status(control, "ep", "InService")
    for name, memory in (("small", 512), ("large", 1024)):
        control.create_inference_component(
            InferenceComponentName=name,
            EndpointName="ep",
            VariantName="AllTraffic",
            Specification={
                "ModelName": name,
                "ComputeResourceRequirements": {
                    "NumberOfCpuCoresRequired": 0.5,
                    "MinMemoryRequiredInMb": memory,
                    "MaxMemoryRequiredInMb": 1536,
                },
            },
            RuntimeConfig={"CopyCount": 1},
        )
    for name in models:
        component_status(control, name, "InService")


def test_boto3_walk_through_runs_with_no_failed_request(
    gateway: str, models: dict[str, Path]
) -> None:
    control, runtime = clients(gateway)
    setup(control, models)
    assert answer(runtime, "small") == pytest.approx(3.0, abs=1e-6)
    assert answer(runtime, "large") == pytest.approx(103.0, abs=1e-6)
    described = control.describe_inference_component(InferenceComponentName="small")
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 1, "CurrentCopyCount": 1}
    assert described["Specification"]["ModelName"] == "small"
    listed = control.list_inference_components(
        EndpointNameEquals="ep", SortBy="Name", SortOrder="Ascending"
    )
    assert [c["InferenceComponentName"] for c in listed["InferenceComponents"]] == [
        "large",
        "small",
    ]

    # Requests run all along while the copy counts change: none may fail.
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                assert answer(runtime, "small") == pytest.approx(3.0, abs=1e-6)
                answered[0] += 1
            except Exception as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        control.update_inference_component_runtime_config(
            InferenceComponentName="small", DesiredRuntimeConfig={"CopyCount": 3}
        )
        grown = component_status(control, "small", "InService")
        assert grown["RuntimeConfig"]["CurrentCopyCount"] == 3
        # One log stream per copy, in the component's own group.
        logs = boto3.client("logs", endpoint_url=gateway, config=CONFIG, **KEYS)
        group = "/aws/sagemaker/InferenceComponents/small"
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        assert len(streams) == 3
        assert all(s["logStreamName"].startswith("small/i-") for s in streams)
        # tandem endpoints describe: each copy, the instance it is on, what it reserves.
        shown = describe_cli(gateway, "ep")
        assert "inference components" in shown and "3/3" in shown
        assert shown.count("0.5 cores, 512 MiB (at most 1536 MiB)") == 3
        assert shown.count("1 cores, 1024 MiB") == 0 and "0.5 cores, 1024 MiB" in shown
        # 3 x 512 MiB beside the other's 1024 MiB need more than one instance of 2048 MiB:
        # ManagedInstanceScaling added the second.
        assert "AllTraffic/1" in shown
        control.update_inference_component_runtime_config(
            InferenceComponentName="small", DesiredRuntimeConfig={"CopyCount": 1}
        )
        shrunk = component_status(control, "small", "InService")
        assert shrunk["RuntimeConfig"] == {"DesiredCopyCount": 1, "CurrentCopyCount": 1}
        wait_until(lambda: answered[0] >= 20, timeout=60, what="requests under the changes")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == []

    # Zero copies: a request is held until a copy runs again, then answered.
    control.update_inference_component_runtime_config(
        InferenceComponentName="large", DesiredRuntimeConfig={"CopyCount": 0}
    )
    zero = component_status(control, "large", "InService")
    assert zero["RuntimeConfig"] == {"DesiredCopyCount": 0, "CurrentCopyCount": 0}
    woken: list[float] = []
    held = threading.Thread(target=lambda: woken.append(answer(runtime, "large")))
    held.start()
    wait_until(lambda: component_sum(gateway, "large") >= 1, timeout=30, what="the request held")
    control.update_inference_component_runtime_config(
        InferenceComponentName="large", DesiredRuntimeConfig={"CopyCount": 1}
    )
    held.join(timeout=120)
    assert woken == [pytest.approx(103.0, abs=1e-6)]
    component_status(control, "large", "InService")

    # Each component's own series, under InferenceComponentName.
    wait_until(
        lambda: component_sum(gateway, "small", "Invocations") >= answered[0] + 1,
        timeout=60,
        what="Invocations of small",
    )
    assert component_sum(gateway, "small", "InvocationsPerCopy") > 0

    # The usage ledger attributes each call to its component.
    def by_component() -> dict[str, dict[str, Any]]:
        groups = httpx.get(f"{gateway}/usage", params={"by": "component"}).json()["groups"]
        return {g["component"]: g for g in groups if g.get("component")}

    def counted() -> dict[str, dict[str, Any]] | None:
        found = by_component()
        small = found.get("small", {})
        return found if small.get("invocations", 0) > answered[0] and small["copy_hours"] else None

    used = wait_until(counted, timeout=60, what="the ledger's component rows")
    assert used["large"]["invocations"] == 2  # the first call and the one held at zero copies
    for name in models:
        control.delete_inference_component(InferenceComponentName=name)
    wait_until(
        lambda: not control.list_inference_components()["InferenceComponents"],
        timeout=60,
        what="components deleted",
    )
    with pytest.raises(ClientError) as gone:
        answer(runtime, "small")
    assert gone.value.response["Error"]["Code"] == "ValidationError"
    control.delete_endpoint(EndpointName="ep")


def test_a_restart_brings_the_components_back(tmp_path: Path, models: dict[str, Path]) -> None:
    state = tmp_path / "state"
    context, port = serve(tmp_path, state)
    with context:
        control, runtime = clients(f"http://127.0.0.1:{port}")
        setup(control, models)
        control.update_inference_component_runtime_config(
            InferenceComponentName="small", DesiredRuntimeConfig={"CopyCount": 2}
        )
        component_status(control, "small", "InService")
    context, port = serve(tmp_path, state)
    with context:
        control, runtime = clients(f"http://127.0.0.1:{port}")
        # The port answers once what was in service serves again: no waiting needed.
        small = control.describe_inference_component(InferenceComponentName="small")
        assert small["InferenceComponentStatus"] == "InService"
        assert small["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
        assert answer(runtime, "small") == pytest.approx(3.0, abs=1e-6)
        assert answer(runtime, "large") == pytest.approx(103.0, abs=1e-6)
        # A new specification rolls out blue/green: the new model answers once it is InService.
        control.update_inference_component(
            InferenceComponentName="small",
            Specification={
                "ModelName": "large",
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 256},
            },
        )
        assert answer(runtime, "small") in (pytest.approx(3.0), pytest.approx(103.0))
        updated = component_status(control, "small", "InService")
        assert updated["Specification"]["ModelName"] == "large"
        assert updated["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
        assert answer(runtime, "small") == pytest.approx(103.0, abs=1e-6)


def test_deleting_a_component_finishes_its_requests_in_flight(gateway: str, tmp_path: Path) -> None:
    control, runtime = clients(gateway)
    gate = tmp_path / "gate"
    control.create_endpoint_config(
        EndpointConfigName="ic-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "InitialInstanceCount": 1}],
    )
    control.create_endpoint(EndpointName="ep", EndpointConfigName="ic-config")
    wait_status(control, "ep", "InService")
    environment = container("|slow", CONTRACT_GATE=str(gate))["Environment"]
    control.create_inference_component(
        InferenceComponentName="slow",
        EndpointName="ep",
        Specification={
            "Container": {"Environment": environment},
            "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 128},
        },
        RuntimeConfig={"CopyCount": 1},
    )
    component_status(control, "slow", "InService")
    answers: list[bytes] = []

    def slow() -> None:
        got = runtime.invoke_endpoint(
            EndpointName="ep", InferenceComponentName="slow", Body=b"gate", ContentType="text/plain"
        )
        answers.append(got["Body"].read())

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()

    def in_flight() -> int:
        (found,) = httpx.get(f"{gateway}/endpoints/ep").json()["InferenceComponents"]
        return int(found["InstanceDetails"][0]["InFlight"])

    wait_until(lambda: in_flight() == 1, what="the slow call in flight")
    control.delete_inference_component(InferenceComponentName="slow")
    deleting = control.describe_inference_component(InferenceComponentName="slow")
    assert deleting["InferenceComponentStatus"] == "Deleting"
    gate.write_text("open")
    thread.join(timeout=60)
    assert answers == [b"gate|slow"]
    wait_until(
        lambda: not control.list_inference_components()["InferenceComponents"],
        what="the component deleted",
    )


def test_a_process_copy_past_its_memory_limit_is_logged(gateway: str, tmp_path: Path) -> None:
    control, runtime = clients(gateway)
    control.create_endpoint_config(
        EndpointConfigName="ic-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "InitialInstanceCount": 1}],
    )
    control.create_endpoint(EndpointName="ep", EndpointConfigName="ic-config")
    wait_status(control, "ep", "InService")
    # The contract server, after taking 300 MiB: more than its MaxMemoryRequiredInMb of 128.
    ballast = (
        f"{PYTHON} -c \"import runpy, sys; ballast = b'x' * (300 << 20); "
        f"sys.argv = ['server']; runpy.run_path('{CONTRACT_SERVER}', run_name='__main__')\""
    )
    control.create_inference_component(
        InferenceComponentName="greedy",
        EndpointName="ep",
        Specification={
            "Container": {"Environment": {"TANDEM_COMMAND": ballast, "CONTRACT_MARKER": "|g"}},
            "ComputeResourceRequirements": {
                "MinMemoryRequiredInMb": 128,
                "MaxMemoryRequiredInMb": 128,
            },
        },
        RuntimeConfig={"CopyCount": 1},
    )
    component_status(control, "greedy", "InService")
    log = next(tmp_path.glob("gateway-*.log"))
    wait_until(
        lambda: "over its MaxMemoryRequiredInMb (128 MiB)" in log.read_text(errors="replace"),
        timeout=60,
        what="the memory warning in the gateway's log",
    )
    # Watched, not killed: it still answers.
    got = runtime.invoke_endpoint(
        EndpointName="ep", InferenceComponentName="greedy", Body=b"x", ContentType="text/plain"
    )
    assert got["Body"].read() == b"x|g"
