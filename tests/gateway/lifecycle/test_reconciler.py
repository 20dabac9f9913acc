"""Endpoints created, updated and deleted while a real ``tandem serve`` serves, through boto3.

The containers are the standard-library contract server (its ``CONTRACT_MARKER`` tells which
config answered); the gateway is a real process with its state in a real SQLite file, killed
with SIGKILL and started again on the same folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import (
    clients,
    deploy,
    invoke,
    processes_of,
    serve_args,
    wait_status,
)
from tests.support import PYTHON, running, wait_until

pytestmark = pytest.mark.slow


def test_create_with_the_waiter_invoke_then_delete(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    control, runtime = clients(url)
    deploy(control, "one", "|v1")
    created = control.create_endpoint(EndpointName="one", EndpointConfigName="one")
    assert created["EndpointArn"] == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/one"
    control.get_waiter("endpoint_in_service").wait(
        EndpointName="one", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    assert invoke(runtime, "one") == b"ping|v1"
    control.delete_endpoint(EndpointName="one")
    control.get_waiter("endpoint_deleted").wait(
        EndpointName="one", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    with pytest.raises(ClientError) as info:
        invoke(runtime, "one")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "not found" in info.value.response["Error"]["Message"]


def test_a_container_that_cannot_start_fails_the_endpoint_naming_it(
    gateway: tuple[str, Path],
) -> None:
    url, _ = gateway
    control, runtime = clients(url)
    deploy(control, "good", "|ok")
    control.create_endpoint(EndpointName="good", EndpointConfigName="good")
    control.create_model(
        ModelName="bad",
        PrimaryContainer={
            "ContainerHostname": "crashy",
            "Environment": {"TANDEM_COMMAND": f"{PYTHON} -c \"print('no model here'); exit(3)\""},
        },
    )
    control.create_endpoint_config(
        EndpointConfigName="bad", ProductionVariants=[{"VariantName": "v", "ModelName": "bad"}]
    )
    control.create_endpoint(EndpointName="bad", EndpointConfigName="bad")
    failed = wait_status(control, "bad", "Failed")
    assert "crashy" in failed["FailureReason"] and "no model here" in failed["FailureReason"]
    wait_status(control, "good", "InService")
    assert invoke(runtime, "good") == b"ping|ok"  # one endpoint's failure touches no other


def test_update_under_load_loses_nothing_and_switches_answers(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    control, runtime = clients(url)
    deploy(control, "blue", "|blue")
    deploy(control, "green", "|green")
    deploy(control, "bystander", "|by")
    control.create_endpoint(EndpointName="live", EndpointConfigName="blue")
    control.create_endpoint(EndpointName="other", EndpointConfigName="bystander")
    wait_status(control, "live", "InService")
    wait_status(control, "other", "InService")

    stop = threading.Event()
    answers: list[bytes] = []
    failures: list[BaseException] = []

    def load() -> None:
        _, own = clients(url)
        while not stop.is_set():
            try:
                answers.append(invoke(own, "live"))
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(answers) > 20, timeout=30, what="load running")
        control.update_endpoint(EndpointName="live", EndpointConfigName="green")
        assert control.describe_endpoint(EndpointName="live")["EndpointStatus"] == "Updating"
        done = wait_status(control, "live", "InService")
        assert done["EndpointConfigName"] == "green"
        seen = len(answers)
        wait_until(lambda: len(answers) > seen + 20, timeout=30, what="load after the switch")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    first_green = answers.index(b"ping|green")
    assert set(answers[:first_green]) == {b"ping|blue"}
    # After the swap every new request goes to green; a few blue ones may finish late.
    assert answers[-10:] == [b"ping|green"] * 10
    assert invoke(runtime, "other") == b"ping|by"  # updating one endpoint touches no other


def test_a_failed_update_rolls_back_to_the_old_config(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    control, runtime = clients(url)
    deploy(control, "fine", "|fine")
    control.create_model(
        ModelName="broken",
        PrimaryContainer={"Environment": {"TANDEM_COMMAND": f'{PYTHON} -c "exit(4)"'}},
    )
    control.create_endpoint_config(
        EndpointConfigName="broken",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "broken"}],
    )
    control.create_endpoint(EndpointName="roll", EndpointConfigName="fine")
    wait_status(control, "roll", "InService")
    control.update_endpoint(EndpointName="roll", EndpointConfigName="broken")

    def rolled_back() -> dict[str, Any] | None:
        described: dict[str, Any] = control.describe_endpoint(EndpointName="roll")
        ok = described["EndpointStatus"] == "InService" and described.get("FailureReason")
        return described if ok else None

    described = wait_until(rolled_back, timeout=60, what="rollback")
    assert described["EndpointConfigName"] == "fine"
    assert "exited with code 4" in described["FailureReason"]
    assert invoke(runtime, "roll") == b"ping|fine"


def test_sigkill_then_restart_brings_back_what_was_in_service(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args, url = serve_args(state)
    with running(args, url=url, log=tmp_path / "first.log", timeout=60) as first:
        control, runtime = clients(url)
        deploy(control, "keep", "|kept")
        control.create_endpoint(EndpointName="keep", EndpointConfigName="keep")
        wait_status(control, "keep", "InService")
        deploy(control, "half", "|half", CONTRACT_SLEEP="0")
        control.create_endpoint(EndpointName="half", EndpointConfigName="half")
        first.kill()  # SIGKILL, the gateway alone: "half" may still be Creating
        first.wait()
    # A new port: another process may have taken the first one while the gateway was down.
    args, url = serve_args(state)
    with running(args, url=url, log=tmp_path / "second.log", timeout=60):
        control, runtime = clients(url)
        wait_status(control, "keep", "InService")
        assert invoke(runtime, "keep") == b"ping|kept"
        # Nothing stays Creating for ever: the half-created endpoint is finished.
        wait_status(control, "half", "InService")
        assert invoke(runtime, "half") == b"ping|half"
    assert wait_until(lambda: not processes_of(state), timeout=30, what="no leftovers")
