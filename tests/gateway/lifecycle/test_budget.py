"""The host budget and shutdown against a real ``tandem serve``: past the budget nothing starts;
a gateway stopped (SIGTERM) or killed (SIGKILL) while it starts many containers leaves none
behind; a restart brings back only what fits.

The containers are the standard-library contract server; ``CONTRACT_PING_STATUS=503`` keeps
one starting (never healthy) for as long as the test needs.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
from botocore.exceptions import ClientError, WaiterError

from gateway.state import FILENAME, EndpointStatus, StateStore
from tests.gateway.batch import test_jobs as jobs
from tests.gateway.batch.test_runs import rows, write_csv
from tests.gateway.lifecycle.conftest import (
    clients,
    container,
    invoke,
    processes_of,
    serve_args,
    wait_status,
)
from tests.support import free_port, running, wait_until

pytestmark = pytest.mark.slow


def deploy(control: Any, name: str, count: int, **env: str) -> None:
    control.create_model(ModelName=name, PrimaryContainer=container(f"|{name}", **env))
    control.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": count}
        ],
    )


def containers_of(state: Path) -> list[psutil.Process]:
    """The container processes (not their launchers) a gateway on ``state`` runs."""
    found = []
    for proc in processes_of(state):
        try:
            if any("contract_server" in part for part in proc.cmdline()[1:3]):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_ten_thousand_instances_are_refused_and_nothing_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args, url = serve_args(state)
    env = {"TANDEM_MAX_CONTAINERS": "4"}
    with running(args, env=env, url=url, log=tmp_path / "gateway.log", timeout=60):
        control, _ = clients(url)
        control.create_model(ModelName="m", PrimaryContainer=container("|m"))
        with pytest.raises(control.exceptions.ResourceLimitExceeded) as refused:
            control.create_endpoint_config(
                EndpointConfigName="huge",
                ProductionVariants=[
                    {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 10000}
                ],
            )
        message = refused.value.response["Error"]["Message"]
        assert "TANDEM_MAX_CONTAINERS" in message and "request delta of 10000" in message
        assert control.list_endpoint_configs()["EndpointConfigs"] == []
        # One that fits alone but not beside what runs is refused at CreateEndpoint.
        deploy(control, "three", 3)
        deploy(control, "two", 2)
        control.create_endpoint(EndpointName="three", EndpointConfigName="three")
        with pytest.raises(ClientError) as beside:
            control.create_endpoint(EndpointName="two", EndpointConfigName="two")
        assert beside.value.response["Error"]["Code"] == "ResourceLimitExceeded"
        wait_status(control, "three", "InService")
        assert len(containers_of(state)) == 3
        names = [e["EndpointName"] for e in control.list_endpoints()["Endpoints"]]
        assert names == ["three"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_gateway_stopped_while_starting_many_containers_leaves_none(
    tmp_path: Path, sig: signal.Signals
) -> None:
    state = tmp_path / "state"
    args, url = serve_args(state)
    env = {"TANDEM_MAX_CONTAINERS": "6", "TANDEM_STOP_GRACE": "2"}
    with running(args, env=env, url=url, log=tmp_path / "gateway.log", timeout=60) as gateway:
        control, _ = clients(url)
        deploy(control, "many", 6, CONTRACT_PING_STATUS="503")  # never healthy: still starting
        control.create_endpoint(EndpointName="many", EndpointConfigName="many")
        wait_until(lambda: len(containers_of(state)) >= 6, timeout=60, what="6 containers up")
        assert control.describe_endpoint(EndpointName="many")["EndpointStatus"] == "Creating"
        gateway.send_signal(sig)
        code = gateway.wait(timeout=60)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    wait_until(lambda: not processes_of(state), timeout=30, what="no container left")
    with StateStore(state / FILENAME) as store:
        # Shutdown is not a failure: the endpoint is created again at the next start.
        record = store.get_endpoint("many")
        assert record is not None and record.status is EndpointStatus.CREATING


def test_a_restart_brings_back_only_what_fits(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args, url = serve_args(state)
    with running(args, env={"TANDEM_MAX_CONTAINERS": "4"}, url=url, timeout=60) as first:
        control, _ = clients(url)
        for name in ("a", "b"):
            deploy(control, name, 2)
            control.create_endpoint(EndpointName=name, EndpointConfigName=name)
        wait_status(control, "a", "InService")
        wait_status(control, "b", "InService")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    # The operator lowers the budget: a restart must not start more than it allows.
    args, url = serve_args(state)
    log = tmp_path / "second.log"
    with running(args, env={"TANDEM_MAX_CONTAINERS": "3"}, url=url, log=log, timeout=60):
        control, runtime = clients(url)
        statuses = {
            n: control.describe_endpoint(EndpointName=n)["EndpointStatus"] for n in ("a", "b")
        }
        assert sorted(statuses.values()) == ["Failed", "InService"], statuses
        (failed,) = [n for n, s in statuses.items() if s == "Failed"]
        (served,) = [n for n, s in statuses.items() if s == "InService"]
        reason = control.describe_endpoint(EndpointName=failed)["FailureReason"]
        assert "ResourceLimitExceeded" in reason and "TANDEM_MAX_CONTAINERS" in reason
        assert len(containers_of(state)) == 2
        assert invoke(runtime, served) == f"ping|{served}".encode()
    wait_until(lambda: not processes_of(state), timeout=30, what="no container left")


def test_a_resize_at_the_limit_shrinks_before_it_grows(tmp_path: Path) -> None:
    """B grows by the room A gives up: A's instances must stop before B's start."""
    state = tmp_path / "state"
    args, url = serve_args(state)
    with running(args, env={"TANDEM_MAX_CONTAINERS": "4"}, url=url, timeout=60):
        control, _ = clients(url)
        for name in ("a", "b"):
            control.create_model(ModelName=name, PrimaryContainer=container(f"|{name}"))
        control.create_endpoint_config(
            EndpointConfigName="ab",
            ProductionVariants=[
                {"VariantName": v.upper(), "ModelName": v, "InitialInstanceCount": 2}
                for v in ("b", "a")
            ],
        )
        control.create_endpoint(EndpointName="ab", EndpointConfigName="ab")
        wait_status(control, "ab", "InService")
        control.update_endpoint_weights_and_capacities(
            EndpointName="ab",
            DesiredWeightsAndCapacities=[
                {"VariantName": "B", "DesiredInstanceCount": 3},
                {"VariantName": "A", "DesiredInstanceCount": 1},
            ],
        )

        def resized() -> dict[str, Any] | None:
            got: dict[str, Any] = control.describe_endpoint(EndpointName="ab")
            counts = {
                v["VariantName"]: v["CurrentInstanceCount"] for v in got["ProductionVariants"]
            }
            settled = counts["B"] == 3 or "FailureReason" in got
            return got if got["EndpointStatus"] == "InService" and settled else None

        done = wait_until(resized, timeout=60, what="the resize settled")
        assert "FailureReason" not in done
        assert {
            v["VariantName"]: v["CurrentInstanceCount"] for v in done["ProductionVariants"]
        } == {
            "B": 3,
            "A": 1,
        }
        assert len(containers_of(state)) == 4


def test_transform_jobs_count_in_the_same_budget(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"TANDEM_MAX_CONTAINERS": "2"}
    with jobs.gateway(state, free_port(), tmp_path / "gateway.log", env=env) as gw:
        control, _ = clients(gw.url)
        deploy(control, "full", 2)
        control.create_endpoint(EndpointName="full", EndpointConfigName="full")
        wait_status(control, "full", "InService")
        write_csv(gw.data / "in" / "x.csv", rows(3))
        jobs.create_model(gw.sm, "summer")
        jobs.create_job(gw.sm, "no-room", "summer", str(gw.data / "in"), str(gw.data / "out"))
        with pytest.raises(WaiterError):
            gw.wait("no-room")
        failed = gw.sm.describe_transform_job(TransformJobName="no-room")
        assert failed["TransformJobStatus"] == "Failed"
        assert "TANDEM_MAX_CONTAINERS" in failed["FailureReason"]
        assert jobs.job_processes(state) == []
        # Room given back, a job runs.
        control.delete_endpoint(EndpointName="full")
        control.get_waiter("endpoint_deleted").wait(EndpointName="full", WaiterConfig=jobs.WAIT)
        jobs.create_job(gw.sm, "roomy", "summer", str(gw.data / "in"), str(gw.data / "out2"))
        assert gw.wait("roomy")["TransformJobStatus"] == "Completed"
