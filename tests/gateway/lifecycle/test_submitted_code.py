"""Where a container finds the user's code apart from its model, as each backend tells it.

The supervisor fetches ``SAGEMAKER_SUBMIT_DIRECTORY`` into the container's code folder; the
process backend points the variable at that folder, the docker backend mounts it at SageMaker's
``/opt/ml/code`` and lets the image install ``requirements.txt``. A relative path in a spec file
is the spec's folder's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.lifecycle.backends.base import SUBMIT_ENV, submitted_code
from gateway.lifecycle.backends.docker import DockerBackend
from gateway.lifecycle.backends.process import ProcessBackend
from gateway.live import ContainerRuntime, Instance
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec


def container(source: Path | None = None, **environment: str) -> ContainerRuntime:
    fields: dict[str, Any] = {
        "name": "churn",
        "containers": [{"framework": "sklearn", "environment": environment}],
    }
    if source is not None:
        fields["source"] = source
    (runtime,) = Instance.from_spec(EndpointSpec.model_validate(fields)).containers
    return runtime


def test_each_backend_points_the_container_at_the_fetched_copy(tmp_path: Path) -> None:
    runtime = container(SAGEMAKER_SUBMIT_DIRECTORY="s3://bucket/code/sourcedir.tar.gz")
    config = GatewaySettings(state_dir=tmp_path / "state")
    base = tmp_path / "base"
    process = ProcessBackend(config).environment(
        runtime, port=1234, model_dir=base / "model", base_dir=base
    )
    assert process[SUBMIT_ENV] == str(base / "code")
    assert process.get("TANDEM_INSTALL_REQUIREMENTS") is None  # a shared Python installs nothing
    docker = DockerBackend(config)
    assert docker.environment(runtime)[SUBMIT_ENV] == "/opt/ml/code"
    assert docker.environment(runtime)["TANDEM_INSTALL_REQUIREMENTS"] == "true"
    assert f"{base / 'code'}:/opt/ml/code:ro" in docker.binds(runtime, base / "model", base)


def test_without_code_apart_nothing_changes(tmp_path: Path) -> None:
    runtime = container()
    config = GatewaySettings(state_dir=tmp_path / "state")
    base = tmp_path / "base"
    env = ProcessBackend(config).environment(runtime, port=1, model_dir=base, base_dir=base)
    assert SUBMIT_ENV not in env
    assert DockerBackend(config).binds(runtime, base / "model", base) == [
        f"{base / 'model'}:/opt/ml/model:ro"
    ]
    assert submitted_code(runtime) is None


def test_a_relative_submit_directory_is_the_spec_folders(tmp_path: Path) -> None:
    runtime = container(tmp_path, SAGEMAKER_SUBMIT_DIRECTORY="src")
    assert submitted_code(runtime) == str(tmp_path / "src")
    remote = container(tmp_path, SAGEMAKER_SUBMIT_DIRECTORY="file:///srv/code")
    assert submitted_code(remote) == "file:///srv/code"
