"""``tandem compose``: a compose project that runs endpoints as containers, with the gateway in one.

The project folder holds ``compose.yaml``, the gateway's copy of each spec (``specs/``), the
unpacked models the sidecars mount (``models/``) and, optionally, Prometheus's configuration.
Each container becomes the service ``<endpoint>-<hostname>``: on its endpoint's network it also
answers by its hostname (as on SageMaker), and the gateway, on every endpoint's network, reaches
it by its service name through the ``external`` backend. Paths in the file are relative to the
project folder, so the project can be committed and moved with the repository.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gateway.artifacts import prepare_model_dir
from gateway.container_env import container_env
from gateway.ops.images import (
    DOCKERFILE,
    GATEWAY,
    ROOT,
    image_for,
    image_name,
    stage,
)
from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec, Mode

GATEWAY_SERVICE = "gateway"
SPECS_IN_IMAGE = "/etc/tandem/specs"
CONTAINER_PORT = 8080
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"
BASE_IMAGE = "${TANDEM_BASE_IMAGE:-python:3.11-slim}"
HEADER = """\
# Written by: tandem compose {args}
# Edit the specs and run that again rather than editing this file.
# Build the images once: tandem build (or add --build to `docker compose up`).
# Then, in this folder: docker compose up
"""


class ComposeError(TandemError):
    """A spec cannot run under compose; the message names the container and why."""

    invalid_input = True


def service_name(endpoint: str, hostname: str) -> str:
    return f"{endpoint}-{hostname}"


def check(specs: Sequence[EndpointSpec]) -> None:
    problems = []
    for spec in specs:
        if spec.variants or spec.shadow_variants:
            problems.append(
                f"{spec.name}: variants: compose renders endpoints of one variant; serve several "
                "variants with tandem serve (process or docker backend)"
            )
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True):
            where = f"{spec.name}/{hostname}"
            if image_for(container) is None:
                problems.append(f"{where}: compose runs images; give it an image or a framework")
            if container.mode is Mode.MULTI_MODEL:
                problems.append(f"{where}: MultiModel containers cannot run under compose yet")
    if problems:
        raise ComposeError("\n".join(problems))


def render(
    specs: Sequence[EndpointSpec],
    out: Path,
    *,
    port: int = 8080,
    prometheus: bool = True,
    args: str = "",
) -> dict[str, str]:
    """Every file of the project but the models: relative path -> text."""
    check(specs)
    context = os.path.relpath(ROOT, out.resolve())
    services: dict[str, Any] = {}
    built: set[str] = set()
    for spec in specs:
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True):
            image = image_for(container)
            assert image is not None
            service: dict[str, Any] = {"image": image}
            framework = container.framework
            if framework is not None and container.image is None and image not in built:
                built.add(image)  # one build per image, however many services run it
                service["build"] = _build(context, framework.value)
            service |= {
                "command": ["serve"],
                "hostname": hostname,
                "environment": {
                    **container_env(container, asynchronous=spec.async_inference is not None),
                    **container.environment,
                    "SAGEMAKER_BIND_TO_PORT": "8080",
                },
                "volumes": [f"./models/{spec.name}/{hostname}:/opt/ml/model:ro"],
                "networks": {spec.name: {"aliases": [hostname]}},
                "labels": {"tandem.endpoint": spec.name, "tandem.container": hostname},
                "restart": "unless-stopped",
            }
            services[service_name(spec.name, hostname)] = service
    services[GATEWAY_SERVICE] = {
        "image": image_name(GATEWAY),
        "build": _build(context, GATEWAY),
        "environment": {"TANDEM_BACKEND": "external", "TANDEM_LOG_LEVEL": "info"},
        "volumes": [f"./specs:{SPECS_IN_IMAGE}:ro"],
        "ports": [f"${{TANDEM_PORT:-{port}}}:{CONTAINER_PORT}"],
        "networks": ["default", *(spec.name for spec in specs)],
        "depends_on": [name for name in services],
        "restart": "unless-stopped",
    }
    files: dict[str, str] = {}
    if prometheus:
        services["prometheus"] = {
            "image": PROMETHEUS_IMAGE,
            "volumes": ["./prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
            "ports": ["${PROMETHEUS_PORT:-9090}:9090"],
            "depends_on": [GATEWAY_SERVICE],
            "restart": "unless-stopped",
        }
        files["prometheus.yml"] = _dump(
            {
                "global": {"scrape_interval": "15s"},
                "scrape_configs": [
                    {
                        "job_name": "tandem",
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [f"{GATEWAY_SERVICE}:{CONTAINER_PORT}"]}],
                    }
                ],
            }
        )
    project = {
        "services": services,
        "networks": {"default": {}, **{spec.name: {} for spec in specs}},
    }
    header = HEADER.format(args=args or "SPEC ...")
    files["compose.yaml"] = header + _dump(project)
    for spec in specs:
        files[f"specs/{spec.name}.yaml"] = _dump(gateway_spec(spec))
    return files


def gateway_spec(spec: EndpointSpec) -> dict[str, Any]:
    """The spec as the gateway in compose reads it: the sidecars mount the models themselves."""
    data = spec.model_dump(mode="json", exclude_unset=True, exclude={"source"})
    data["containers"] = [
        {"hostname": hostname, **{k: v for k, v in c.items() if k != "model_data"}}
        for hostname, c in zip(spec.hostnames, data["containers"], strict=True)
    ]
    return data


def write_project(
    specs: Sequence[EndpointSpec],
    out: Path,
    *,
    port: int = 8080,
    prometheus: bool = True,
    args: str = "",
    max_model_bytes: int = 32 * 1024**3,
) -> list[Path]:
    """Unpack the models, then write every file; the paths written."""
    files = render(specs, out, port=port, prometheus=prometheus, args=args)
    written = []
    for spec in specs:
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True):
            target = out / "models" / spec.name / hostname
            prepare_model_dir(spec.model_data_url(container), target, max_bytes=max_model_bytes)
            written.append(target)
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # never a half-written file
        written.append(path)
    return written


def _build(context: str, target: str) -> dict[str, Any]:
    target_stage, args = stage(target)
    return {
        "context": context,
        "dockerfile": str(DOCKERFILE),
        "target": target_stage,
        "args": {"BASE_IMAGE": BASE_IMAGE, **args},
    }


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
