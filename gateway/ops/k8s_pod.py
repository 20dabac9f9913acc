"""The pod of an endpoint: the gateway container, one sidecar per spec container, their volumes.

Every replica runs this same pod; ``gateway.ops.k8s`` wraps it in a Deployment beside the other
objects of the endpoint.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from gateway.container_env import container_env
from gateway.ops.images import GATEWAY, image_for, image_name
from pipelines.spec import ContainerSpec, EndpointSpec, Framework, Mode

GATEWAY_CONTAINER = "gateway"
GATEWAY_PORT = 8080
FIRST_SIDECAR_PORT = 8081
SPECS_DIR = "/etc/tandem/specs"
STATE_DIR = "/var/lib/tandem"
STORE_DIR = "/opt/ml/store"
MODEL_DIR = "/opt/ml/model"
#: Defaults the gateway would otherwise guess from the node; MultiModel containers only.
DEFAULT_MODEL_MEMORY = 1024 * 2**20
DEFAULT_DISK_CACHE = 5 * 1024**3
#: Memory a MultiModel sidecar needs beyond its models (the interpreter, the framework).
SIDECAR_OVERHEAD = 512 * 2**20
MIB = 2**20
#: (cpu request, memory request, cpu limit, memory limit) by what a container runs.
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    GATEWAY: ("250m", "256Mi", "1", "512Mi"),
    Framework.SKLEARN.value: ("250m", "256Mi", "1", "1Gi"),
    Framework.PYTORCH.value: ("500m", "512Mi", "2", "2Gi"),
    Framework.TENSORFLOW.value: ("500m", "1Gi", "2", "2Gi"),
    "image": ("250m", "256Mi", "1", "1Gi"),
}


@dataclass(frozen=True)
class Sidecar:
    hostname: str
    spec: ContainerSpec
    port: int


def sidecars(spec: EndpointSpec) -> list[Sidecar]:
    """Each spec container with the port it is told to bind, since they share the pod's network."""
    return [
        Sidecar(hostname, container, FIRST_SIDECAR_PORT + i)
        for i, (hostname, container) in enumerate(zip(spec.hostnames, spec.containers, strict=True))
    ]


def gateway_spec(spec: EndpointSpec, sidecars: Sequence[Sidecar]) -> dict[str, Any]:
    """The spec the gateway in the pod reads: each container's port, model data as mounted."""
    data = spec.model_dump(mode="json", exclude_unset=True, exclude={"source"})
    containers = []
    for sidecar, fields in zip(sidecars, data["containers"], strict=True):
        fields = {"hostname": sidecar.hostname, **fields}
        env = {**fields.get("environment", {}), "SAGEMAKER_BIND_TO_PORT": str(sidecar.port)}
        fields["environment"] = env
        if sidecar.spec.mode is Mode.MULTI_MODEL:
            if not _is_s3(sidecar.spec):
                fields["model_data"] = f"{STORE_DIR}/{spec.name}/{sidecar.hostname}"
            # In bytes with their unit: a bare number would read as MiB.
            fields["memory_limit"] = f"{_memory(sidecar.spec)}B"
            fields["disk_cache_limit"] = f"{_disk(sidecar.spec)}B"
        else:
            fields.pop("model_data", None)  # the sidecar mounts its model itself
        containers.append(fields)
    data["containers"] = containers
    return data


def pod_template(
    spec: EndpointSpec,
    sidecars: Sequence[Sidecar],
    labels: dict[str, str],
    spec_text: str,
    registry: str,
) -> dict[str, Any]:
    """The Deployment's pod template; ``registry`` prefixes every Tandem image."""
    multi = [s for s in sidecars if s.spec.mode is Mode.MULTI_MODEL]
    volumes: list[dict[str, Any]] = [
        {"name": "specs", "configMap": {"name": f"{spec.name}-spec"}},
        {"name": "state", "emptyDir": {"sizeLimit": _quantity(_state_size(multi))}},
    ]
    if any(uses_volume(s.spec) for s in sidecars):
        claim = {"claimName": f"{spec.name}-models", "readOnly": True}
        volumes.append({"name": "models", "persistentVolumeClaim": claim})
    mounts = [
        {"name": "specs", "mountPath": SPECS_DIR, "readOnly": True},
        {"name": "state", "mountPath": STATE_DIR},
    ]
    if any(not _is_s3(s.spec) for s in multi):
        mounts.append({"name": "models", "mountPath": STORE_DIR, "readOnly": True})
    gateway = {
        "name": GATEWAY_CONTAINER,
        "image": registry + image_name(GATEWAY),
        "imagePullPolicy": "IfNotPresent",
        "env": _env(
            {
                "TANDEM_BACKEND": "external",
                "TANDEM_EXTERNAL_URL": "http://127.0.0.1:{port}",
                # The gateway starts serving once every sidecar answers /ping: give them time.
                "TANDEM_START_TIMEOUT": "600",
            }
        ),
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        **_probes("http", startup_seconds=600),
        "resources": _resources(RESOURCES[GATEWAY]),
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    return {
        "metadata": {
            "labels": labels,
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(GATEWAY_PORT),
                "prometheus.io/path": "/metrics",
                # A changed spec changes the pod template, so pods roll to pick it up.
                "tandem/spec-sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
            },
        },
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [gateway, *(_sidecar(spec, s, registry) for s in sidecars)],
            "volumes": volumes,
        },
    }


def _sidecar(spec: EndpointSpec, sidecar: Sidecar, registry: str) -> dict[str, Any]:
    container = sidecar.spec
    image = image_for(container)
    assert image is not None  # gateway.ops.k8s.check() refused the others
    if container.image is None:
        image = registry + image
    asynchronous = spec.async_inference is not None
    env = {**container_env(container, asynchronous=asynchronous), **container.environment}
    mounts: list[dict[str, Any]] = []
    kind = container.framework.value if container.framework and not container.image else "image"
    cpu, memory, cpu_limit, memory_limit = RESOURCES[kind]
    if container.mode is Mode.MULTI_MODEL:
        env |= {"SAGEMAKER_MULTI_MODEL": "true", "MALLOC_MMAP_THRESHOLD_": "131072"}
        env["TANDEM_MEMORY_LIMIT_MB"] = str(_memory(container) // MIB)
        memory_limit = _quantity(_memory(container) + SIDECAR_OVERHEAD)
        # The gateway hands over models by path: its cache must be visible at the same place.
        mounts.append({"name": "state", "mountPath": STATE_DIR, "readOnly": True})
    elif container.model_data is not None:
        subpath = f"{spec.name}/{sidecar.hostname}"
        mounts.append(
            {"name": "models", "mountPath": MODEL_DIR, "subPath": subpath, "readOnly": True}
        )
    env["SAGEMAKER_BIND_TO_PORT"] = str(sidecar.port)  # the contract's, so it wins
    out: dict[str, Any] = {
        "name": sidecar.hostname.lower(),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve"],
        "env": _env(env),
        "ports": [{"containerPort": sidecar.port}],
        **_probes(sidecar.port, startup_seconds=300),
        "resources": _resources((cpu, memory, cpu_limit, memory_limit)),
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if mounts:
        out["volumeMounts"] = mounts
    return out


def _probes(port: int | str, *, startup_seconds: int) -> dict[str, Any]:
    """Startup waits for the first /ping; then readiness takes the pod out of the Service fast,
    and liveness restarts only what stayed down for a minute."""
    get = {"path": "/ping", "port": port}
    return {
        "startupProbe": {
            "httpGet": get,
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": startup_seconds // 5,
        },
        "readinessProbe": {
            "httpGet": get,
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": get,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 6,
        },
    }


def uses_volume(container: ContainerSpec) -> bool:
    """Whether the container's model data lives on the endpoint's model volume."""
    if container.mode is Mode.MULTI_MODEL:
        return not _is_s3(container)
    return container.model_data is not None


def _is_s3(container: ContainerSpec) -> bool:
    return urlparse(container.model_data or "").scheme == "s3"


def _memory(container: ContainerSpec) -> int:
    return container.memory_limit or DEFAULT_MODEL_MEMORY


def _disk(container: ContainerSpec) -> int:
    return container.disk_cache_limit or DEFAULT_DISK_CACHE


def _state_size(multi: Sequence[Sidecar]) -> int:
    """The gateway's logs and bookkeeping, and the disk cache of each MultiModel container."""
    return 1024 * MIB + sum(_disk(s.spec) for s in multi)


def _quantity(size: int) -> str:
    return f"{math.ceil(size / MIB)}Mi"


def _resources(values: tuple[str, str, str, str]) -> dict[str, Any]:
    cpu, memory, cpu_limit, memory_limit = values
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def _env(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]
