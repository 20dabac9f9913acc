"""The external backend (the gateway image's under compose): containers someone else runs.

Real contract servers stand in for them; their hostnames are their port numbers, so the URL
template ``http://127.0.0.1:{hostname}`` finds them.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.lifecycle.backends import BackendError, create_backend
from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.processes import endpoint, only, quick_settings
from tests.support import PYTHON, free_port, running, wait_until


def serve_contract(stack: contextlib.ExitStack, port: int, mode: str) -> subprocess.Popen[bytes]:
    env = {"SAGEMAKER_BIND_TO_PORT": str(port), "CONTRACT_MODE": mode}
    url = f"http://127.0.0.1:{port}"
    return stack.enter_context(running([PYTHON, CONTRACT_SERVER], env=env, url=url))


def test_the_gateway_serves_containers_that_run_elsewhere(tmp_path: Path) -> None:
    lower, upper = free_port(), free_port()
    spec = tmp_path / "ext.yaml"
    containers = [{"hostname": str(port), "image": "elsewhere"} for port in (lower, upper)]
    fields = {"name": "ext", "execution": "Direct", "containers": containers}
    spec.write_text(yaml.safe_dump(fields))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "TANDEM_BACKEND": "external",
        "TANDEM_EXTERNAL_URL": "http://127.0.0.1:{hostname}",
        "TANDEM_HEALTH_INTERVAL": "0.2",
        "TANDEM_HEALTH_FAILURES": "1",
        "TANDEM_PING_TIMEOUT": "1",
        "TANDEM_RESTART_BACKOFF": "0.1",
        "TANDEM_RESTART_BACKOFF_MAX": "0.2",
    }
    args = [PYTHON, "-m", "gateway", "serve", str(spec), "--port", str(port)]
    args += ["--state-dir", str(tmp_path / "state")]

    def post(hostname: int) -> httpx.Response:
        headers = {"X-Amzn-SageMaker-Target-Container-Hostname": str(hostname)}
        return httpx.post(f"{url}/endpoints/ext/invocations", content=b"hi", headers=headers)

    def state(hostname: int) -> str:
        described = httpx.get(f"{url}/endpoints/ext", timeout=5).json()
        (found,) = [c for c in described["Containers"] if c["ContainerHostname"] == str(hostname)]
        return str(found["State"])

    with contextlib.ExitStack() as stack:
        serve_contract(stack, lower, "echo")
        second = serve_contract(stack, upper, "upper")
        gateway = stack.enter_context(running(args, env=env, url=url, log=tmp_path / "gw.log"))
        assert post(lower).content == b"hi"
        assert post(upper).content == b"HI"
        # One goes away: the gateway notices and answers 503 until whoever runs it brings it back.
        second.terminate()
        second.wait(timeout=10)
        wait_until(lambda: state(upper) != "InService", timeout=30, what="noticed")
        assert post(upper).status_code == 503
        serve_contract(stack, upper, "upper")
        wait_until(lambda: state(upper) == "InService", timeout=30, what="back")
        assert post(upper).content == b"HI"
        assert post(lower).content == b"hi"
        assert gateway.poll() is None


def test_a_bad_url_template_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = quick_settings(tmp_path, backend="external", external_url="http://{host}:8080")
    backend = create_backend("external", settings)
    with pytest.raises(
        BackendError, match=r"external_url 'http://\{host\}:8080' is not a valid template"
    ):
        backend.check(only(endpoint(a={"image": "x"})))
