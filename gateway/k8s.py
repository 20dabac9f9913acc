"""Kubernetes manifests for an endpoint: one pod per replica, the gateway and its sidecars inside.

As on SageMaker, an instance of an endpoint holds every container of it: the pod runs the gateway
(the ``external`` backend, reaching each sidecar at ``127.0.0.1:<its port>``) and one sidecar per
spec container, each told its own ``SAGEMAKER_BIND_TO_PORT`` since they share the pod's network.
Replicas are identical; a Service spreads requests over them and an HPA adds replicas when the
invocations per instance pass a target (SageMaker's ``SageMakerVariantInvocationsPerInstance``).

Model data: single-model sidecars mount ``<endpoint>/<hostname>/`` of a ReadWriteMany volume (the
``<endpoint>-models`` claim) read-only at ``/opt/ml/model``; fill it once with the unpacked models
(``tandem k8s --unpack-models``). MultiModel containers load from their ``s3://`` prefix through
the gateway as everywhere, or from ``<endpoint>/<hostname>/`` of that volume for a folder prefix;
the gateway's cache is an emptyDir that the MultiModel sidecars mount at the same path.

Pure rendering: plain dicts, then YAML; ``gateway.k8s_files`` lays them out as files.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import yaml

from gateway.images import GATEWAY, image_for, image_name
from pipelines.spec import ContainerSpec, EndpointSpec, Framework, Mode

#: The Kubernetes version the manifests are written for and validated against.
KUBERNETES_VERSION = "1.30"
GATEWAY_CONTAINER = "gateway"
GATEWAY_PORT = 8080
FIRST_SIDECAR_PORT = 8081
SERVICE_PORT = 80
SPECS_DIR = "/etc/tandem/specs"
STATE_DIR = "/var/lib/tandem"
STORE_DIR = "/opt/ml/store"
MODEL_DIR = "/opt/ml/model"
#: The custom metric the HPA reads: invocations per minute of one pod (see ``adapter_rules``).
INVOCATIONS_METRIC = "tandem_invocations_per_instance"
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
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"


class K8sError(ValueError):
    """A spec cannot run on Kubernetes as rendered; the message names the container and why."""


@dataclass(frozen=True)
class Options:
    """What the spec does not say: scaling bounds, where images come from, volume sizes."""

    min_replicas: int = 2
    max_replicas: int = 10
    #: Invocations per minute per instance the HPA keeps each replica at.
    target_invocations: int = 600
    #: Prefix of every Tandem image, e.g. ``registry.example.com/ml/``.
    registry: str = ""
    models_storage: str = "10Gi"

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise K8sError("replicas must satisfy 1 <= min-replicas <= max-replicas")
        if self.target_invocations < 1:
            raise K8sError("the target invocations per instance must be at least 1")


@dataclass(frozen=True)
class _Sidecar:
    hostname: str
    spec: ContainerSpec
    port: int


def check(specs: Sequence[EndpointSpec]) -> None:
    problems = []
    for spec in specs:
        if spec.name != spec.name.lower():
            problems.append(
                f"{spec.name}: Kubernetes object names are lowercase; name the endpoint "
                f"{spec.name.lower()!r}"
            )
        names: set[str] = set()
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True):
            where = f"{spec.name}/{hostname}"
            if image_for(container) is None:
                problems.append(f"{where}: Kubernetes runs images; give it an image or a framework")
            name = hostname.lower()  # container names are lowercase DNS labels
            if name == GATEWAY_CONTAINER or name in names:
                problems.append(f"{where}: container name {name!r} is taken in the pod")
            names.add(name)
    if problems:
        raise K8sError("\n".join(problems))


def manifests(spec: EndpointSpec, options: Options) -> dict[str, dict[str, Any]]:
    """Every object of one endpoint, by file name (``deployment.yaml`` ...)."""
    check([spec])
    sidecars = [
        _Sidecar(hostname, container, FIRST_SIDECAR_PORT + i)
        for i, (hostname, container) in enumerate(zip(spec.hostnames, spec.containers, strict=True))
    ]
    labels = {LABEL_NAME: "tandem", LABEL_INSTANCE: spec.name}
    spec_text = dump(gateway_spec(spec, sidecars))
    objects = {"configmap.yaml": _configmap(spec, labels, spec_text)}
    if any(uses_volume(s.spec) for s in sidecars):
        objects["pvc.yaml"] = _object(
            "v1",
            "PersistentVolumeClaim",
            f"{spec.name}-models",
            labels,
            {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": options.models_storage}},
            },
        )
    objects["deployment.yaml"] = _deployment(spec, sidecars, labels, spec_text, options)
    objects["service.yaml"] = _object(
        "v1",
        "Service",
        spec.name,
        labels,
        {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}],
        },
    )
    objects["pdb.yaml"] = _object(
        "policy/v1",
        "PodDisruptionBudget",
        spec.name,
        labels,
        {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
    )
    objects["hpa.yaml"] = _hpa(spec, labels, options)
    return objects


def gateway_spec(spec: EndpointSpec, sidecars: Sequence[_Sidecar]) -> dict[str, Any]:
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


def _deployment(
    spec: EndpointSpec,
    sidecars: Sequence[_Sidecar],
    labels: dict[str, str],
    spec_text: str,
    options: Options,
) -> dict[str, Any]:
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
        "image": options.registry + image_name(GATEWAY),
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
    template = {
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
            "containers": [gateway, *(_sidecar(spec, s, options) for s in sidecars)],
            "volumes": volumes,
        },
    }
    # No ``replicas``: the HPA owns the count, and re-applying must not reset it.
    return _object(
        "apps/v1",
        "Deployment",
        spec.name,
        labels,
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": template,
        },
    )


def _sidecar(spec: EndpointSpec, sidecar: _Sidecar, options: Options) -> dict[str, Any]:
    container = sidecar.spec
    image = image_for(container)
    assert image is not None  # check() refused the others
    if container.image is None:
        image = options.registry + image
    env = dict(container.environment)
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


def _hpa(spec: EndpointSpec, labels: dict[str, str], options: Options) -> dict[str, Any]:
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": INVOCATIONS_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(options.target_invocations)},
        },
    }
    return _object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        spec.name,
        labels,
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": options.min_replicas,
            "maxReplicas": options.max_replicas,
            "metrics": [metric],
            # Scale in slowly: a new replica starts cold (its models load on first use).
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    )


def _configmap(spec: EndpointSpec, labels: dict[str, str], text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{spec.name}-spec", "labels": labels},
        "data": {f"{spec.name}.yaml": text},
    }


def _object(
    api: str, kind: str, name: str, labels: dict[str, str], spec: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
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


def _state_size(multi: Sequence[_Sidecar]) -> int:
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


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors for shared objects, multi-line strings as blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
