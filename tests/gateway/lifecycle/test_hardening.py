"""Issue 23's reproductions on a real ``tandem serve``: names that never collide, folders that
do not pile up, and DescribeEndpoint that reports what runs.

One gateway serves the module; its endpoints run the standard-library contract server. What
runs is read from the processes themselves (their environment names their endpoint, container
and model folder), not from the gateway's own report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.lifecycle.conftest import clients, container, invoke, wait_status
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow

WAIT = {"Delay": 0.2, "MaxAttempts": 600}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("names")
    state = folder / "state"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    env = {"TANDEM_MODEL_ROOTS": str(folder)}
    with running(args, url=url, log=folder / "gateway.log", env=env, timeout=60):
        yield url, state


def containers_of(state: Path, endpoint: str) -> list[dict[str, str]]:
    """The environment of every container of ``endpoint`` that this gateway runs (one per model
    folder: a container's launcher carries the same environment)."""
    wanted = str(state.resolve())
    found: dict[str, dict[str, str]] = {}
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("TANDEM_STATE") == wanted and env.get("TANDEM_CONTAINER", "").startswith(
            f"{endpoint}/"
        ):
            found[env.get("SM_MODEL_DIR", "")] = env
    return list(found.values())


def endpoint(control: Any, name: str, model: str, count: int = 1) -> None:
    control.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": count}
        ],
    )
    control.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_status(control, name, "InService")


def counts(control: Any, name: str) -> tuple[int, int]:
    (variant,) = control.describe_endpoint(EndpointName=name)["ProductionVariants"]
    return variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]


def test_an_endpoint_named_jobs_keeps_its_model_when_a_job_named_like_its_container_ends(
    gateway: tuple[str, Path],
) -> None:
    url, state = gateway
    control, runtime = clients(url)
    weights = state.parent / "weights"
    weights.mkdir()
    (weights / "weights.bin").write_bytes(b"w" * 100)
    definition = container("|jobs")
    control.create_model(
        ModelName="jobs-model",
        PrimaryContainer={
            **definition,
            "ContainerHostname": "container-1",
            "ModelDataUrl": str(weights),
        },
    )
    endpoint(control, "jobs", "jobs-model")
    (running_container,) = containers_of(state, "jobs")
    model_dir = Path(running_container["SM_MODEL_DIR"])
    assert (model_dir / "weights.bin").read_bytes() == b"w" * 100

    data = state.parent / "in"
    data.mkdir()
    (data / "rows.csv").write_text("1,2\n3,4\n")
    command = f"{PYTHON} {CONTRACT_SERVER}"
    control.create_model(
        ModelName="job-model",
        PrimaryContainer={"Environment": {"TANDEM_COMMAND": command, "CONTRACT_MODE": "sum"}},
    )
    control.create_transform_job(
        TransformJobName="container-1",
        ModelName="job-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": str(state.parent / "out"), "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    control.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="container-1", WaiterConfig=WAIT
    )
    job = control.describe_transform_job(TransformJobName="container-1")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert (model_dir / "weights.bin").read_bytes() == b"w" * 100, "the job cleaned only its own"
    assert invoke(runtime, "jobs") == b"ping|jobs"
    control.delete_endpoint(EndpointName="jobs")
    control.get_waiter("endpoint_deleted").wait(EndpointName="jobs", WaiterConfig=WAIT)


def test_deleted_endpoints_leave_no_folders(gateway: tuple[str, Path]) -> None:
    url, state = gateway
    control, runtime = clients(url)
    control.create_model(ModelName="short", PrimaryContainer=container("|short"))
    for i in range(5):
        name = f"short-{i}"
        endpoint(control, name, "short", count=1 + i % 2)
        assert invoke(runtime, name) == b"ping|short"
        assert containers_of(state, name)
        control.delete_endpoint(EndpointName=name)
        control.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)
        control.delete_endpoint_config(EndpointConfigName=name)
    leftovers = sorted(str(p.relative_to(state)) for p in state.rglob("short-*"))
    assert leftovers == []
    assert not any(containers_of(state, f"short-{i}") for i in range(5))
    kinds = {p.name for p in state.iterdir() if p.is_dir()}
    assert kinds <= {"endpoints", "jobs"}, kinds


def test_an_update_to_the_current_config_applies_its_counts(gateway: tuple[str, Path]) -> None:
    url, state = gateway
    control, runtime = clients(url)
    control.create_model(ModelName="same", PrimaryContainer=container("|same"))
    endpoint(control, "same", "same")
    control.update_endpoint_weights_and_capacities(
        EndpointName="same",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}],
    )
    wait_status(control, "same", "InService")
    assert counts(control, "same") == (3, 3)
    assert len(containers_of(state, "same")) == 3

    control.update_endpoint(EndpointName="same", EndpointConfigName="same")
    wait_status(control, "same", "InService")
    wait_until(
        lambda: len(containers_of(state, "same")) == 1, timeout=60, what="the old instances stop"
    )
    assert counts(control, "same") == (1, 1), "Describe says what runs: the config's one"
    assert invoke(runtime, "same") == b"ping|same"


def test_describe_reports_what_runs_through_a_sequence_of_changes(
    gateway: tuple[str, Path],
) -> None:
    """Beyond the reproduction: after every change, Current = Desired = the processes."""
    url, state = gateway
    control, _ = clients(url)
    control.create_model(ModelName="seq", PrimaryContainer=container("|seq"))
    endpoint(control, "seq", "seq", count=2)
    control.create_endpoint_config(
        EndpointConfigName="seq-2",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "seq", "InitialInstanceCount": 1}
        ],
    )
    steps: list[tuple[str, dict[str, Any]]] = [
        ("resize", {"DesiredInstanceCount": 3}),
        ("update", {"EndpointConfigName": "seq-2"}),
        ("resize", {"DesiredInstanceCount": 2}),
        ("update", {"EndpointConfigName": "seq"}),
        ("update", {"EndpointConfigName": "seq"}),
    ]
    for kind, change in steps:
        if kind == "resize":
            control.update_endpoint_weights_and_capacities(
                EndpointName="seq",
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", **change}],
            )
        else:
            control.update_endpoint(EndpointName="seq", **change)
        wait_status(control, "seq", "InService")
        current, desired = counts(control, "seq")
        assert current == desired, (kind, change, current, desired)
        wait_until(
            lambda n=current: len(containers_of(state, "seq")) == n,  # type: ignore[misc]
            timeout=60,
            what=f"{current} instances after {kind} {change}",
        )
