"""What a container finds in its environment from the gateway: the one place it is made.

The backends that run containers (``gateway/lifecycle/backends``) and the deploy renderers
(``gateway/ops``: compose projects, Kubernetes manifests) both start from here, so a container
gets the same variables however it runs. The spec's own ``environment`` wins over what is made
from its fields; each backend then adds what only it knows (the port, the model folder).
"""

from __future__ import annotations

import math
from pathlib import Path

from gateway.live import ContainerRuntime
from pipelines.spec import ContainerSpec

MIB = 1024 * 1024
#: TANDEM_ASYNC_MAX_BYTES by default, for what is rendered without the gateway's settings.
ASYNC_MAX_BYTES = 1024**3


#: SageMaker's variable for the user's code apart from the model (the SDK's ``sourcedir.tar.gz``).
SUBMIT_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
#: Where the supervisor puts that code, under a container's base dir; the backend points the
#: container's ``SAGEMAKER_SUBMIT_DIRECTORY`` at it (a remote URL is the gateway's to fetch).
CODE_FOLDER = "code"


def submitted_code(container: ContainerRuntime) -> str | None:
    """The container's ``SAGEMAKER_SUBMIT_DIRECTORY``; a relative path is its spec's folder's."""
    url = container.spec.environment.get(SUBMIT_ENV, "").strip()
    if not url:
        return None
    if "://" not in url and container.source is not None and not Path(url).is_absolute():
        return str(container.source / url)
    return url


def batching_env(spec: ContainerSpec) -> dict[str, str]:
    """The spec's ``batching`` as a built-in container reads it (the spec's environment wins)."""
    if spec.batching is None:
        return {}
    return {
        "TANDEM_MAX_BATCH_SIZE": str(spec.batching.max_batch_size),
        "TANDEM_MAX_BATCH_DELAY_MS": f"{spec.batching.max_batch_delay_ms:g}",
    }


def container_env(
    spec: ContainerSpec, *, asynchronous: bool, async_max_bytes: int = ASYNC_MAX_BYTES
) -> dict[str, str]:
    """What a container gets from its spec's fields and the gateway's settings, before the spec's
    own environment (which wins): ``batching``, and for an endpoint with ``async_inference`` a
    payload limit (``SAGEMAKER_MAX_PAYLOAD_IN_MB``, 6 by default in Tandem's own containers) that
    takes an input of TANDEM_ASYNC_MAX_BYTES; TANDEM_MAX_PAYLOAD, the gateway's real-time limit,
    still refuses bigger bodies at the gateway."""
    env = batching_env(spec)
    if asynchronous:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(math.ceil(async_max_bytes / MIB))
    return env


def multi_model_environment(container: ContainerRuntime) -> dict[str, str]:
    """What a MultiModel container needs beyond the contract (the spec's environment wins)."""
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        # glibc otherwise raises its mmap threshold after the first big free, so an unloaded
        # model's arrays stay in the heap and the gateway, which evicts by RSS, sees no drop.
        "MALLOC_MMAP_THRESHOLD_": "131072",
    }
    if container.memory_limit is not None:
        env["TANDEM_MEMORY_LIMIT_MB"] = f"{container.memory_limit / 2**20:.3f}"
    return env


def spec_environment(container: ContainerRuntime, async_max_bytes: int) -> dict[str, str]:
    """A running container's variables from its spec: multi-model hosting, batching and the
    async payload limit, then the spec's own ``environment`` (which wins)."""
    env: dict[str, str] = {}
    if container.multi_model:
        env.update(multi_model_environment(container))
    env.update(
        container_env(
            container.spec, asynchronous=container.asynchronous, async_max_bytes=async_max_bytes
        )
    )
    env.update(container.spec.environment)
    return env
