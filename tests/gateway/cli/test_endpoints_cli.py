"""``tandem deploy|export|endpoints`` against a real ``tandem serve``, each run as a real command.

The gateway starts empty on a free port; the endpoints are the standard-library contract server
(``command:`` specs), so an answer shows which spec serves it (``CONTRACT_MARKER``). What the
commands did is checked through the real boto3 clients too.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.control.apply import versioned
from pipelines.spec import load_spec
from tests.gateway.harness import CONTRACT_SERVER, sagemaker_client
from tests.support import PYTHON, ROOT, free_port, running

#: Quick stops, so updates and deletes stay short.
SETTINGS = {"TANDEM_STOP_GRACE": "2", "TANDEM_RESTART_BACKOFF": "0.5"}
#: The client's environment: fixed AWS keys (a gateway without authentication takes any
#: signature), none of the developer's own, and a wide terminal so that tables do not wrap.
CLIENT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TANDEM_"))},
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "COLUMNS": "250",
}


def tandem(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env={**CLIENT_ENV, **env},
        cwd=ROOT,
        timeout=180,
        check=False,
    )


def ok(*args: str, **env: str) -> str:
    """Run ``tandem``, expect success, return its stdout."""
    done = tandem(*args, **env)
    assert done.returncode == 0, f"tandem {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return done.stdout


@contextmanager
def gateway(folder: Path, **env: str) -> Iterator[str]:
    """A real ``tandem serve`` with an empty state folder; yields its URL."""
    port = free_port()
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(folder / "state")]
    url = f"http://127.0.0.1:{port}"
    with running(
        [*args, "--port", str(port)],
        env={**SETTINGS, **env},
        url=url,
        log=folder / "gateway.log",
        timeout=60,
    ):
        yield url


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with gateway(tmp_path) as base:
        yield base


def write_spec(folder: Path, name: str, marker: str, file: str | None = None) -> Path:
    """A spec whose one container answers with its body and ``marker``."""
    spec = {
        "name": name,
        "containers": [
            {"command": ["python", CONTRACT_SERVER], "environment": {"CONTRACT_MARKER": marker}}
        ],
    }
    path = folder / (file or f"{name}.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def control(url: str) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}),
    )


def answer(url: str, endpoint: str) -> bytes:
    reply = sagemaker_client(url).invoke_endpoint(EndpointName=endpoint, Body=b"hi")
    return bytes(reply["Body"].read())


def config_of(spec: Path) -> str:
    return str(versioned(load_spec(spec))[1]["EndpointConfigName"])


def test_deploy_list_describe_update_export_delete(url: str, tmp_path: Path) -> None:
    churn = write_spec(tmp_path, "churn", "|v1")
    fraud = write_spec(tmp_path, "fraud", "|fraud")
    out = ok("deploy", str(churn), str(fraud), "--to", url, "--wait")
    assert f"churn: created (config {config_of(churn)})" in out
    assert f"fraud: created (config {config_of(fraud)})" in out
    assert answer(url, "churn") == b"hi|v1"
    assert answer(url, "fraud") == b"hi|fraud"

    listed = ok("endpoints", "list", "--url", url, "--page-size", "1")  # one endpoint per call
    for spec in (churn, fraud):
        (row,) = [line for line in listed.splitlines() if f" {spec.stem} " in line]
        assert "InService" in row and config_of(spec) in row
    described = ok("endpoints", "describe", "churn", "--url", url)
    for fact in ("InService", config_of(churn), "AllTraffic", "container-1", CONTRACT_SERVER):
        assert fact in described
    assert "arn:aws:sagemaker:us-east-1:000000000000:endpoint/churn" in described

    sm = control(url)
    before = sm.describe_endpoint(EndpointName="churn")
    models = sm.list_models()["Models"]
    assert "churn: unchanged" in ok("deploy", str(churn), "--to", url, "--wait")
    again = sm.describe_endpoint(EndpointName="churn")
    assert again["LastModifiedTime"] == before["LastModifiedTime"]
    assert again["EndpointConfigName"] == before["EndpointConfigName"]
    assert sm.list_models()["Models"] == models

    write_spec(tmp_path, "churn", "|v2")
    assert f"churn: updated (config {config_of(churn)})" in ok(
        "deploy", str(churn), "--to", url, "--wait"
    )
    assert sm.describe_endpoint(EndpointName="churn")["EndpointConfigName"] == config_of(churn)
    assert answer(url, "churn") == b"hi|v2"
    assert answer(url, "fraud") == b"hi|fraud"

    updated = sm.describe_endpoint(EndpointName="churn")["LastModifiedTime"]
    exported = tmp_path / "exported.yaml"  # beside the spec: its commands run in that folder
    ok("export", "churn", "--url", url, "-o", str(exported))
    assert yaml.safe_load(exported.read_text()) == yaml.safe_load(churn.read_text())
    assert ok("export", "churn", "--url", url) == exported.read_text()
    assert "churn: unchanged" in ok("deploy", str(exported), "--to", url)
    assert sm.describe_endpoint(EndpointName="churn")["LastModifiedTime"] == updated

    ok("endpoints", "delete", "churn", "--url", url, "--wait")
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint(EndpointName="churn")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    listed = ok("endpoints", "list", "--url", url)
    assert "fraud" in listed and "churn" not in listed
    assert answer(url, "fraud") == b"hi|fraud"


def test_a_failed_endpoint_says_why_and_a_fixed_spec_replaces_it(url: str, tmp_path: Path) -> None:
    spec = tmp_path / "flaky.yaml"
    crash = "import sys; print('no model here'); sys.exit(3)"
    spec.write_text(
        yaml.safe_dump({"name": "flaky", "containers": [{"command": ["python", "-c", crash]}]})
    )
    failed = tandem("deploy", str(spec), "--to", url, "--wait")
    assert failed.returncode == 1
    assert "flaky: Failed" in failed.stderr and "no model here" in failed.stderr
    described = ok("endpoints", "describe", "flaky", "--url", url)
    assert "Failed" in described and "exited with code 3" in described

    write_spec(tmp_path, "flaky", "|fixed")
    assert "flaky: created" in ok("deploy", str(spec), "--to", url, "--wait")
    assert answer(url, "flaky") == b"hi|fixed"


def test_bad_input_exits_2_with_the_message_and_changes_nothing(url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"name": "empty"}))
    done = tandem("deploy", str(empty), "--to", url)
    assert done.returncode == 2
    assert f"tandem: invalid endpoint spec:\n  {empty}: containers: Field required" in done.stderr

    outside = tmp_path / "outside.yaml"
    outside.write_text(
        yaml.safe_dump(
            {"name": "outside", "containers": [{"framework": "sklearn", "model_data": "/etc"}]}
        )
    )
    done = tandem("deploy", str(outside), "--to", url)
    assert done.returncode == 2
    assert done.stderr.startswith("tandem: ValidationException: ")
    assert "outside the model roots" in done.stderr
    assert control(url).list_models()["Models"] == []

    done = tandem("endpoints", "describe", "nope", "--url", url)
    assert (done.returncode, done.stderr) == (
        2,
        'tandem: ValidationException: Could not find endpoint "nope".\n',
    )
    done = tandem("export", "nope", "--url", url)
    assert done.returncode == 2 and 'Could not find endpoint "nope"' in done.stderr
    done = tandem("endpoints", "delete", "nope", "--url", url)
    assert done.returncode == 2 and 'Could not find endpoint "nope"' in done.stderr

    closed = f"http://127.0.0.1:{free_port()}"
    done = tandem("endpoints", "list", "--url", closed)
    assert done.returncode == 1 and f"cannot reach the gateway at {closed}" in done.stderr


def test_an_invoke_key_is_refused_and_an_admin_key_is_not(tmp_path: Path) -> None:
    with gateway(tmp_path, TANDEM_AUTH="api-key", TANDEM_API_KEYS="plain,boss:admin") as url:
        spec = write_spec(tmp_path, "churn", "|v1")
        for done in (
            tandem("endpoints", "list", "--url", url, "--api-key", "plain"),
            tandem("deploy", str(spec), "--to", url, TANDEM_API_KEY="plain"),
        ):
            assert done.returncode == 1
            assert done.stderr.startswith("tandem: AccessDeniedException: ")
            assert "admin role" in done.stderr
        done = tandem("endpoints", "list", "--url", url)
        assert done.returncode == 1 and "MissingAuthenticationTokenException" in done.stderr
        assert "No endpoints" in ok("endpoints", "list", "--url", url, TANDEM_API_KEY="boss")


def test_sigv4_keys_sign_the_calls(tmp_path: Path) -> None:
    keys = "AKPLAIN:plain-secret,AKBOSS:boss-secret:admin"
    with gateway(tmp_path, TANDEM_AUTH="sigv4", TANDEM_SIGV4_CREDENTIALS=keys) as url:
        assert "No endpoints" in ok(
            "endpoints",
            "list",
            "--url",
            url,
            "--access-key",
            "AKBOSS",
            "--secret-key",
            "boss-secret",
        )
        assert "No endpoints" in ok(
            "endpoints",
            "list",
            "--url",
            url,
            AWS_ACCESS_KEY_ID="AKBOSS",
            AWS_SECRET_ACCESS_KEY="boss-secret",
        )
        wrong = tandem(
            "endpoints", "list", "--url", url, "--access-key", "AKBOSS", "--secret-key", "nope"
        )
        assert wrong.returncode == 1 and "InvalidSignatureException" in wrong.stderr
        half = tandem("endpoints", "list", "--url", url, "--access-key", "AKBOSS")
        assert half.returncode == 2 and "--access-key and --secret-key together" in half.stderr


def test_a_spec_with_variants_and_a_timeout_exports_as_it_was_deployed(
    url: str, tmp_path: Path
) -> None:
    def variant(name: str, weight: float, count: int = 1) -> dict[str, Any]:
        one: dict[str, Any] = {
            "name": name,
            "weight": weight,
            "containers": [
                {"command": ["python", CONTRACT_SERVER], "environment": {"CONTRACT_MARKER": name}}
            ],
        }
        if count != 1:
            one["instance_count"] = count
        return one

    spec = {
        "name": "ab",
        "timeout": 30.0,
        "variants": [variant("A", 3.0), variant("B", 1.0, count=2)],
    }
    path = tmp_path / "ab.yaml"
    path.write_text(yaml.safe_dump(spec))
    ok("deploy", str(path), "--to", url, "--wait")
    exported = tmp_path / "exported.yaml"
    ok("export", "ab", "--url", url, "-o", str(exported))
    assert yaml.safe_load(exported.read_text()) == spec
    assert "ab: unchanged" in ok("deploy", str(exported), "--to", url)
    described = ok("endpoints", "describe", "ab", "--url", url)
    assert "75%" in described and "25%" in described
