"""The files ``tandem k8s`` writes: kustomize bases, one YAML stream, the model volume.

Also the prometheus-adapter rules that turn the gateway's invocation counter into the HPA's
per-instance metric and, when an endpoint has ``async_inference``, serve its backlog gauge to the
HPA. The objects themselves come from ``gateway.ops.k8s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.artifacts import prepare_model_dir
from gateway.ops.k8s import (
    BACKLOG_METRIC,
    INVOCATIONS_METRIC,
    Options,
    check,
    dump,
    manifests,
    uses_volume,
)
from pipelines.spec import EndpointSpec

HEADER = """\
# Written by: tandem k8s {args}
# Edit the spec and run that again rather than editing this file; patch it with kustomize.
"""
ADAPTER_VALUES = "prometheus-adapter-values.yaml"


_PODS = {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}


def adapter_rules(*, backlog: bool = False) -> dict[str, Any]:
    """prometheus-adapter values: per-pod invocations per minute, from the gateway's counter,
    and with ``backlog`` each pod's asynchronous backlog per instance, the gauge as it is."""
    rules: list[dict[str, Any]] = [
        {
            "seriesQuery": 'tandem_invocations_total{namespace!="",pod!=""}',
            "resources": _PODS,
            "name": {"matches": "^tandem_invocations_total$", "as": INVOCATIONS_METRIC},
            "metricsQuery": (
                "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>) * 60"
            ),
        }
    ]
    if backlog:
        rules.append(
            {
                "seriesQuery": f'{BACKLOG_METRIC}{{namespace!="",pod!=""}}',
                "resources": _PODS,
                "name": {"matches": f"^{BACKLOG_METRIC}$", "as": BACKLOG_METRIC},
                "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
            }
        )
    return {"rules": {"custom": rules}}


def kustomization(files: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }


def render_files(
    specs: Sequence[EndpointSpec], options: Options, *, args: str = ""
) -> dict[str, str]:
    """A kustomize base per endpoint (``<name>/*.yaml``) and the adapter's values: path -> text."""
    check(specs)
    header = HEADER.format(args=args or "SPEC ...")
    files: dict[str, str] = {}
    for spec in specs:
        objects = manifests(spec, options)
        for name, obj in objects.items():
            files[f"{spec.name}/{name}"] = header + dump(obj)
        files[f"{spec.name}/kustomization.yaml"] = header + dump(kustomization(list(objects)))
    backlog = any(spec.async_inference is not None for spec in specs)
    files[ADAPTER_VALUES] = header + dump(adapter_rules(backlog=backlog))
    return files


def render_stream(specs: Sequence[EndpointSpec], options: Options, *, args: str = "") -> str:
    """Every object of every endpoint as one YAML stream, for ``kubectl apply -f -``."""
    check(specs)
    docs = [dump(obj) for spec in specs for obj in manifests(spec, options).values()]
    return HEADER.format(args=args or "SPEC ...") + "---\n".join(docs)


def write_models(
    specs: Sequence[EndpointSpec], out: Path, *, max_bytes: int = 32 * 1024**3
) -> list[Path]:
    """The model volume's content, ``<endpoint>/<hostname>/``: unpacked, or as is for MultiModel."""
    written = []
    for spec in specs:
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True):
            if not uses_volume(container):
                continue
            target = out / spec.name / hostname
            prepare_model_dir(spec.model_data_url(container), target, max_bytes=max_bytes)
            written.append(target)
    return written
