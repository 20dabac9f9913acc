"""Kubernetes manifests for an endpoint: one pod per replica, the gateway and its sidecars inside.

As on SageMaker, an instance of an endpoint holds every container of it: the pod runs the gateway
(the ``external`` backend, reaching each sidecar at ``127.0.0.1:<its port>``) and one sidecar per
spec container, each told its own ``SAGEMAKER_BIND_TO_PORT`` since they share the pod's network.
Replicas are identical; a Service spreads requests over them and an HPA adds replicas when the
invocations per instance pass a target (SageMaker's ``SageMakerVariantInvocationsPerInstance``),
or, for an endpoint with ``async_inference``, when its queued requests per instance do
(``ApproximateBacklogSizePerInstance``).

Model data: single-model sidecars mount ``<endpoint>/<hostname>/`` of a ReadWriteMany volume (the
``<endpoint>-models`` claim) read-only at ``/opt/ml/model``; fill it once with the unpacked models
(``tandem k8s --unpack-models``). MultiModel containers load from their ``s3://`` prefix through
the gateway as everywhere, or from ``<endpoint>/<hostname>/`` of that volume for a folder prefix;
the gateway's cache is an emptyDir that the MultiModel sidecars mount at the same path.

Pure rendering: plain dicts, then YAML; ``gateway.ops.k8s_pod`` builds the pod,
``gateway.ops.k8s_files`` lays the objects out as files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from gateway.ops.images import image_for
from gateway.ops.k8s_pod import (
    FIRST_SIDECAR_PORT,
    GATEWAY_CONTAINER,
    GATEWAY_PORT,
    STATE_DIR,
    gateway_spec,
    pod_template,
    sidecars,
    uses_volume,
)
from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec

# The pod's names stay importable from here, where the other objects of an endpoint live.
__all__ = [
    "BACKLOG_METRIC",
    "FIRST_SIDECAR_PORT",
    "GATEWAY_PORT",
    "INVOCATIONS_METRIC",
    "KUBERNETES_VERSION",
    "LABEL_INSTANCE",
    "LABEL_NAME",
    "SERVICE_PORT",
    "STATE_DIR",
    "K8sError",
    "Options",
    "check",
    "dump",
    "gateway_spec",
    "manifests",
    "uses_volume",
]

#: The Kubernetes version the manifests are written for and validated against.
KUBERNETES_VERSION = "1.30"
SERVICE_PORT = 80
#: The custom metric the HPA reads: invocations per minute of one pod (see ``adapter_rules``).
INVOCATIONS_METRIC = "tandem_invocations_per_instance"
#: The gateway's gauge of asynchronous requests queued or running per instance, read by the HPA
#: of an endpoint with ``async_inference`` (served to it by prometheus-adapter, as it is). The
#: same name as ``gateway.asynchronous.metrics.BACKLOG_PER_INSTANCE``, spelled out here so that
#: rendering imports nothing of the serving path.
BACKLOG_METRIC = "tandem_approximate_backlog_size_per_instance"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"


class K8sError(TandemError):
    """A spec cannot run on Kubernetes as rendered; the message names the container and why."""

    invalid_input = True


@dataclass(frozen=True)
class Options:
    """What the spec does not say: scaling bounds, where images come from, volume sizes."""

    min_replicas: int = 2
    max_replicas: int = 10
    #: Invocations per minute per instance the HPA keeps each replica at.
    target_invocations: int = 600
    #: Asynchronous requests queued or running per instance the HPA keeps each replica at
    #: (endpoints with ``async_inference``; SageMaker's examples target 5).
    target_backlog: float = 5.0
    #: Prefix of every Tandem image, e.g. ``registry.example.com/ml/``.
    registry: str = ""
    models_storage: str = "10Gi"

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise K8sError("replicas must satisfy 1 <= min-replicas <= max-replicas")
        if self.target_invocations < 1:
            raise K8sError("the target invocations per instance must be at least 1")
        if not self.target_backlog > 0:
            raise K8sError("the target backlog per instance must be more than 0")


def check(specs: Sequence[EndpointSpec]) -> None:
    problems = []
    for spec in specs:
        if spec.variants or spec.shadow_variants:
            problems.append(
                f"{spec.name}: variants: Kubernetes renders endpoints of one variant; serve "
                "several variants with tandem serve (process or docker backend)"
            )
        if spec.name != spec.name.lower():
            problems.append(
                f"{spec.name}: Kubernetes object names are lowercase; name the endpoint "
                f"{spec.name.lower()!r}"
            )
        config = spec.async_inference
        for field, url in (
            ("output_path", config.output_path if config else None),
            ("failure_path", config.failure_path if config else None),
        ):
            if url is not None and not url.lower().startswith("s3://"):
                problems.append(
                    f"{spec.name}: async_inference.{field}: {url!r}: on Kubernetes answers go to "
                    "s3:// (a folder would be inside one pod's filesystem)"
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
    pod = sidecars(spec)
    labels = {LABEL_NAME: "tandem", LABEL_INSTANCE: spec.name}
    spec_text = dump(gateway_spec(spec, pod))
    objects = {"configmap.yaml": _configmap(spec, labels, spec_text)}
    if any(uses_volume(s.spec) for s in pod):
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
    template = pod_template(spec, pod, labels, spec_text, options.registry)
    objects["deployment.yaml"] = _deployment(spec.name, labels, template)
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


def _deployment(name: str, labels: dict[str, str], template: dict[str, Any]) -> dict[str, Any]:
    # No ``replicas``: the HPA owns the count, and re-applying must not reset it.
    return _object(
        "apps/v1",
        "Deployment",
        name,
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


def _pods_metric(name: str, average: str) -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": name},
            "target": {"type": "AverageValue", "averageValue": average},
        },
    }


def _hpa(spec: EndpointSpec, labels: dict[str, str], options: Options) -> dict[str, Any]:
    metrics = [_pods_metric(INVOCATIONS_METRIC, str(options.target_invocations))]
    if spec.async_inference is not None:
        # Each pod queues what it accepted: the average over pods is SageMaker's
        # ApproximateBacklogSizePerInstance. The HPA follows whichever metric asks for more pods.
        metrics.append(_pods_metric(BACKLOG_METRIC, f"{options.target_backlog:g}"))
    return _object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        spec.name,
        labels,
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": options.min_replicas,
            "maxReplicas": options.max_replicas,
            "metrics": metrics,
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
