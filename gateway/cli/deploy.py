"""``tandem deploy`` and ``tandem export``: spec files to and from a running gateway, by its API.

``deploy`` does over HTTP what ``tandem serve spec.yaml`` does in process
(``gateway.control.apply``): the spec becomes a model and an endpoint config named after their
content, then the endpoint is created, or updated blue/green when it serves another config.
Deploying the same spec again finds those names taken and changes nothing. ``export`` reads an
endpoint back (``DescribeEndpoint`` -> ``DescribeEndpointConfig`` -> ``DescribeModel``) and writes
the spec that runs it, so exporting then deploying the result is a no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import EXIT_FAILED, fail, failures
from gateway.cli.credentials import ANONYMOUS, Credentials, with_credentials
from gateway.cli.endpoints import DEFAULT_URL, Timeout, Url, Wait

#: The spec defaults ``export`` leaves out (``from_spec`` gives the same requests without them).
_SPEC_DEFAULTS = {"variant": "AllTraffic", "execution": "Serial"}
_SIZE_FIELDS = ("memory_limit", "disk_cache_limit")


@with_credentials
def deploy(
    specs: Annotated[list[Path], typer.Argument(help="Endpoint spec files (YAML).")],
    to: Annotated[
        str,
        typer.Option("--to", "--url", envvar="TANDEM_URL", help="Base URL of the gateway."),
    ] = DEFAULT_URL,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """Create or update each spec's endpoint on a running gateway (the same spec again: no-op)."""
    from gateway.cli.endpoints import call_of, connect, remote_errors, settle
    from gateway.control.apply import apply_with, versioned
    from pipelines.spec import load_specs

    with failures():
        parsed = load_specs(specs)  # every file checked before the first call
    client = connect(to, credentials)
    call = call_of(client)

    def say(line: str) -> None:
        typer.echo(line, err=True)

    def recreate(endpoint: str, config: str) -> None:
        # The API cannot update a Failed endpoint: delete it, then create it on the new config.
        call("DeleteEndpoint", {"EndpointName": endpoint})
        settle(client, endpoint, timeout=timeout, gone=True, say=say)
        call("CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config})

    wanted: dict[str, str] = {}
    with remote_errors(to):
        for spec in parsed:
            config = versioned(spec)[1]["EndpointConfigName"]
            applied = apply_with(call, spec, recreate)
            typer.echo(f"{spec.name}: {applied.value} (config {config})")
            wanted[spec.name] = config
        if not wait:
            return
        problems = []
        for name, config in wanted.items():
            final = settle(client, name, timeout=timeout, say=say)
            problem = _problem(name, config, final)
            if problem is not None:
                problems.append(problem)
    if problems:
        fail(EXIT_FAILED, "\n  ".join(["not deployed:", *problems]))


@with_credentials
def export(
    endpoint: Annotated[str, typer.Argument(help="Name of the endpoint.")],
    url: Url = DEFAULT_URL,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the spec here, not to stdout.")
    ] = None,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """Write the spec file of what ENDPOINT runs (its serving config, not one being rolled out)."""
    import yaml

    from gateway.cli.endpoints import call_of, connect, remote_errors
    from gateway.control.variants import endpoint_spec

    call = call_of(connect(url, credentials))
    with remote_errors(url):
        described = call("DescribeEndpoint", {"EndpointName": endpoint})
        name, config_name = described["EndpointName"], described["EndpointConfigName"]
        config = call("DescribeEndpointConfig", {"EndpointConfigName": config_name})
        # Describe* leaves tags out; the request deadline travels in one.
        config["Tags"] = call("ListTags", {"ResourceArn": config["EndpointConfigArn"]})["Tags"]
        models: dict[str, Any] = {}
        for variant in [*config["ProductionVariants"], *config.get("ShadowProductionVariants", [])]:
            model_name = variant["ModelName"]
            if model_name not in models:
                models[model_name] = call("DescribeModel", {"ModelName": model_name})
        spec = endpoint_spec(name, config, models.__getitem__)
    document = spec_document(spec)
    header = f"# Endpoint {name} (config {config_name}), exported from {url}.\n"
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    with failures():
        output.write_text(text, encoding="utf-8")
    typer.echo(f"{name}: wrote {output}", err=True)


def spec_document(spec: Any) -> dict[str, Any]:
    """``spec`` as a spec file has it: the fields its requests set, spec defaults left out."""
    document: dict[str, Any] = spec.model_dump(mode="json", exclude_unset=True)
    for field, default in _SPEC_DEFAULTS.items():
        if document.get(field) == default:
            del document[field]
    for listed in ("variants", "shadow_variants"):
        if document.get(listed) == []:
            del document[listed]
    groups = [document, *document.get("variants", []), *document.get("shadow_variants", [])]
    for group in groups:
        # A variant's weight says its share, so it stays; a lone variant's is noise.
        defaults: dict[str, object] = {"instance_count": 1, "execution": "Serial"}
        if group is document:
            defaults["weight"] = 1.0
        for key, value in defaults.items():
            if group.get(key) == value:
                del group[key]
    for container in (c for group in groups for c in group.get("containers", [])):
        if not container.get("environment"):
            container.pop("environment", None)
        if container.get("mode") == "SingleModel":
            del container["mode"]
        for field in _SIZE_FIELDS:
            if container.get(field) is not None:  # a bare number would be read as MiB
                container[field] = _size(container[field])
    return document


def _size(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def _problem(name: str, config: str, final: dict[str, Any] | None) -> str | None:
    """Why ``name`` does not serve ``config`` once it settled, or ``None`` when it does."""
    if final is None:
        return f"{name}: deleted meanwhile"
    reason = final.get("FailureReason") or "no reason given"
    if final["EndpointStatus"] != "InService":
        return f"{name}: {final['EndpointStatus']}: {reason}"
    if str(final["EndpointConfigName"]).lower() != config.lower():
        return f"{name}: the update to {config} was rolled back: {reason}"
    return None
