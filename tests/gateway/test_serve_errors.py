"""Every error case against a real ``tandem serve``, asserted through the real boto3 client.

One gateway process serves every endpoint below; each container is a ``command:`` running the
standard-library contract server (``contract_server.py``) or the README's ``my_server.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from gateway.logstreams import instance_id
from gateway.settings import MAX_PAYLOAD_BYTES
from tests.gateway.harness import CONTRACT_SERVER, sagemaker_client
from tests.support import PYTHON, ROOT, free_port, running, wait_until

#: Quick restarts, so the kill-and-restart case stays short.
SETTINGS = {
    "TANDEM_RESTART_BACKOFF": "0.5",
    "TANDEM_RESTART_BACKOFF_MAX": "1",
    "TANDEM_STOP_GRACE": "2",
}


def contract(**env: str) -> dict[str, Any]:
    """A container running the contract server, configured by ``CONTRACT_*`` env."""
    return {"command": ["python", CONTRACT_SERVER], "environment": env}


def readme_server() -> str:
    """The README's ``my_server.py``: the custom container users copy is the one tested here."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (server,) = [b for b in blocks if "BaseHTTPRequestHandler" in b]
    return str(server)


def write_spec(
    folder: Path, name: str, containers: dict[str, dict[str, Any]], **fields: Any
) -> Path:
    spec = {
        "name": name,
        **fields,
        "containers": [{"hostname": h, **c} for h, c in containers.items()],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    folder = tmp_path_factory.mktemp("serve-errors")
    (folder / "my_server.py").write_text(readme_server())
    specs = [
        write_spec(
            folder,
            "direct",
            {
                "alpha": contract(CONTRACT_MARKER="|alpha"),
                "broken": contract(CONTRACT_STATUS="500", CONTRACT_MESSAGE="division by zero"),
            },
            execution="Direct",
            variant="Blue",
        ),
        write_spec(
            folder,
            "chain",
            {
                "shout": contract(CONTRACT_MODE="upper"),
                "custom": {"command": ["python", "my_server.py"]},
            },
        ),
        write_spec(
            folder,
            "picky",
            {
                "pre": contract(CONTRACT_CONTENT_TYPE="text/x-mid"),
                "model": contract(
                    CONTRACT_STATUS="415", CONTRACT_MESSAGE="content type text/x-mid not supported"
                ),
            },
        ),
        write_spec(folder, "slow", {"sleepy": contract(CONTRACT_SLEEP="30")}, timeout=1),
        write_spec(folder, "victim", {"only": contract()}),
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", *map(str, specs)]
    args += ["--state-dir", str(folder / "state"), "--port", str(port)]
    with running(args, env=SETTINGS, url=url, log=folder / "gateway.log", timeout=90) as proc:
        yield url, proc


@pytest.fixture(scope="module")
def client(gateway: tuple[str, subprocess.Popen[bytes]]) -> Any:
    return sagemaker_client(gateway[0])


def invoke(client: Any, name: str, body: bytes = b"abc", **kwargs: Any) -> bytes:
    response = client.invoke_endpoint(EndpointName=name, Body=body, **kwargs)
    return bytes(response["Body"].read())


def headers(error: Any) -> dict[str, str]:
    return dict(error.value.response["ResponseMetadata"]["HTTPHeaders"])


def test_a_stdlib_command_container_joins_a_serial_chain(client: Any) -> None:
    # Step 1 upper-cases, step 2 (the README's my_server.py) reverses: both ran, in order.
    assert invoke(client, "chain", b"abc", ContentType="text/plain") == b"CBA"
    assert invoke(client, "chain", b"tandem") == b"MEDNAT"  # again, on a reused connection


def test_unknown_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError) as info:
        invoke(client, "nowhere")
    message = info.value.response["Error"]["Message"]
    assert message == "Endpoint nowhere of account 000000000000 not found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "x-amzn-invoked-production-variant" not in headers(info)  # no endpoint, no variant


def test_missing_or_unknown_target_hostname_is_validation_error(client: Any) -> None:
    with pytest.raises(
        client.exceptions.ValidationError, match="Target-Container-Hostname"
    ) as info:
        invoke(client, "direct")
    assert headers(info)["x-amzn-invoked-production-variant"] == "Blue"
    with pytest.raises(client.exceptions.ValidationError, match=r"gamma not found.*alpha, broken"):
        invoke(client, "direct", TargetContainerHostname="gamma")
    assert invoke(client, "direct", TargetContainerHostname="alpha") == b"abc|alpha"


def test_target_hostname_on_a_serial_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="uses Serial execution"):
        invoke(client, "chain", TargetContainerHostname="shout")


def test_a_step_answering_415_is_model_error_naming_it(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "picky", ContentType="text/csv")
    error = info.value.response
    assert error["OriginalStatusCode"] == 415
    assert error["OriginalMessage"] == "content type text/x-mid not supported"
    assert error["Error"]["Message"] == (
        'Received client error (415) from model with message "content type text/x-mid not '
        'supported". The failing step is 2 of 2 in the Serial pipeline.'
    )
    assert error["LogStreamArn"].endswith(
        f":log-group:/aws/sagemaker/Endpoints/picky:log-stream:AllTraffic/{instance_id('picky')}/model"
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert headers(info)["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert headers(info)["server-timing"].startswith("pre;dur=")


def test_a_container_answering_500_is_model_error_naming_it(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "direct", TargetContainerHostname="broken")
    error = info.value.response
    assert error["OriginalStatusCode"] == 500
    assert error["Error"]["Message"] == (
        'Received server error (500) from broken with message "division by zero".'
    )
    assert headers(info)["x-amzn-invoked-production-variant"] == "Blue"
    assert headers(info)["x-amzn-requestid"] == error["ResponseMetadata"]["RequestId"]


def test_oversize_body_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="exceeds the limit of 6291456"):
        invoke(client, "chain", b"x" * (MAX_PAYLOAD_BYTES + 1))


def test_deadline_exceeded_is_model_error_with_status_0(client: Any) -> None:
    # The container answers after 30 s; only the spec's 1 s deadline can make this a ModelError.
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "slow")
    assert info.value.response["OriginalStatusCode"] == 0
    message = info.value.response["Error"]["Message"]
    assert "timed out while waiting for a response from container sleepy" in message


def test_a_killed_container_is_unavailable_at_once_then_restarted(
    gateway: tuple[str, subprocess.Popen[bytes]], client: Any
) -> None:
    url, proc = gateway
    assert invoke(client, "victim") == b"abc"
    port = int(
        httpx.get(f"{url}/endpoints/victim").json()["Containers"][0]["Url"].rsplit(":", 1)[1]
    )
    (server,) = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections())
    ]
    os.kill(server.pid, signal.SIGKILL)
    # 503 at once, not the invocation timeout's ModelError after waiting on a dead container.
    with pytest.raises(
        client.exceptions.ServiceUnavailable, match="Container only of endpoint victim"
    ):
        invoke(client, "victim")

    def back() -> bool:
        try:
            return invoke(client, "victim") == b"abc"
        except client.exceptions.ServiceUnavailable:
            return False

    wait_until(back, timeout=30, what="victim serving again")
    described = httpx.get(f"{url}/endpoints/victim").json()
    assert described["EndpointStatus"] == "InService"
    assert described["Containers"][0]["Restarts"] == 1
    assert described["Containers"][0]["State"] == "InService"
