"""Endpoints created, updated and deleted while a real ``tandem serve`` serves, through boto3.

The containers are the standard-library contract server (its ``CONTRACT_MARKER`` tells which
config answered); the gateway is a real process with its state in a real SQLite file, killed
with SIGKILL and started again on the same folder.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON, free_port, running, wait_until

pytestmark = pytest.mark.slow

CONFIG = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}


def clients(url: str) -> tuple[Any, Any]:
    control = boto3.client("sagemaker", endpoint_url=url, config=CONFIG, **KEYS)
    runtime = boto3.client("sagemaker-runtime", endpoint_url=url, config=CONFIG, **KEYS)
    return control, runtime


def container(marker: str, **env: str) -> dict[str, Any]:
    command = f"{PYTHON} {CONTRACT_SERVER}"
    return {"Environment": {"TANDEM_COMMAND": command, "CONTRACT_MARKER": marker, **env}}


def deploy(control: Any, name: str, marker: str, **env: str) -> str:
    """A model and a config called ``name``, answering with ``marker``; returns the config."""
    control.create_model(ModelName=name, PrimaryContainer=container(marker, **env))
    control.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name}],
    )
    return name


def wait_status(control: Any, name: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        described: dict[str, Any] = control.describe_endpoint(EndpointName=name)
        return described if described["EndpointStatus"] == wanted else None

    return wait_until(check, timeout=timeout, what=f"{name} {wanted}")


def invoke(runtime: Any, name: str) -> bytes:
    answer = runtime.invoke_endpoint(EndpointName=name, Body=b"ping", ContentType="text/plain")
    body: bytes = answer["Body"].read()
    return body


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    with running(args, url=url, log=tmp_path / "gateway.log", timeout=60):
        yield url, state


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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    with running(args, url=url, log=tmp_path / "second.log", timeout=60):
        control, runtime = clients(url)
        wait_status(control, "keep", "InService")
        assert invoke(runtime, "keep") == b"ping|kept"
        # Nothing stays Creating for ever: the half-created endpoint is finished.
        wait_status(control, "half", "InService")
        assert invoke(runtime, "half") == b"ping|half"
    assert wait_until(lambda: not processes_of(state), timeout=30, what="no leftovers")


def processes_of(state: Path) -> list[psutil.Process]:
    """The processes a gateway on ``state`` started (they carry it in their environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TANDEM_STATE") == str(state.resolve()):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found
