"""The rich tables and cells of ``tandem endpoints list|describe``, apart from the commands.

``endpoints.py`` holds the client side (connecting, calling, waiting, errors), which
``deploy``, ``capture`` and the rest reuse; what only the two read-only commands need to show
an answer (a config's variants and traffic, a model's containers, a coloured status, a local
time) is here. rich is imported inside each function, as in the commands, to keep
``tandem --help`` fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

_STATUS_STYLE = {"InService": "green", "Failed": "red", "OutOfService": "red"}


def variants_table(title: str, config: dict[str, Any], counts: dict[str, Any]) -> Any:
    """A config's variants: model, weight, share of traffic (or copied, for a shadow) and
    instances, live counts from ``counts`` (by variant name) where the endpoint has them."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left", header_style="bold")
    table.add_column("variant")
    table.add_column("model", overflow="fold")
    table.add_column("weight", justify="right")
    table.add_column("traffic", justify="right")
    table.add_column("instances", justify="right")
    production = config["ProductionVariants"]

    def weight_of(variant: dict[str, Any]) -> float:
        live = counts.get(variant["VariantName"], {})
        return float(live.get("DesiredWeight", variant.get("InitialVariantWeight", 1.0)))

    total = sum(weight_of(v) for v in production) or 1.0
    shadows = config.get("ShadowProductionVariants", [])
    for variant in [*production, *shadows]:
        live = counts.get(variant["VariantName"], {})
        desired = live.get("DesiredInstanceCount", variant.get("InitialInstanceCount", 1))
        current = live.get("CurrentInstanceCount")
        shown = f"{current}/{desired}" if current is not None else str(desired)
        weight = weight_of(variant)
        share = min(weight / total, 1.0)
        traffic = f"{share:.0%} copied" if variant in shadows else f"{share:.0%}"
        table.add_row(
            escape(variant["VariantName"]) + (" [dim](shadow)[/dim]" if variant in shadows else ""),
            escape(variant.get("ModelName") or "(inference components)"),
            f"{weight:g}",
            traffic,
            shown,
        )
    return table


def containers_table(model: dict[str, Any]) -> Any:
    """A model's containers: hostname, what runs them (built-in, docker or a command), data."""
    from rich.markup import escape
    from rich.table import Table

    from gateway.control.translate import COMMAND_ENV, containers_of, framework_of, model_data_of

    execution = model.get("InferenceExecutionConfig", {}).get("Mode", "Serial")
    title = f"model {model['ModelName']} ({execution})"
    table = Table(title=escape(title), title_justify="left", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("hostname")
    table.add_column("runs", overflow="fold")
    table.add_column("model data", overflow="fold")
    table.add_column("mode")
    for i, (_, container) in enumerate(containers_of(model), start=1):
        image = str(container.get("Image") or "")
        command = container.get("Environment", {}).get(COMMAND_ENV)
        framework = framework_of(image) if image else None
        if command is not None:
            runs = f"command: {command}"
        elif framework is None:
            runs = f"{image} (docker)"
        elif image == framework.value:
            runs = f"{image} (built-in)"
        else:
            runs = f"{image} -> {framework.value} (built-in)"
        hostname = container.get("ContainerHostname")
        table.add_row(
            str(i),
            escape(hostname) if hostname else f"[dim]container-{i}[/dim]",
            escape(runs),
            escape(model_data_of(container) or "-"),
            container.get("Mode", "SingleModel"),
        )
    return table


def instances_table(live: dict[str, Any]) -> Any:
    """Each instance of each variant as the gateway runs it now (its ``/endpoints/{name}``):
    health, requests in flight and, for a MultiModel container, the models it has loaded."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="instances (now)", title_justify="left", header_style="bold")
    table.add_column("variant")
    table.add_column("instance", overflow="fold")
    table.add_column("state")
    table.add_column("in flight", justify="right")
    table.add_column("loaded models", overflow="fold")
    for variant in [*live.get("ProductionVariants", []), *live.get("ShadowProductionVariants", [])]:
        for instance in variant.get("InstanceDetails", []):
            loaded = instance.get("LoadedModels") or {}
            shown = "; ".join(
                (f"{escape(host)}: " if len(loaded) > 1 else "")
                + f"{len(models)}"
                + (f" ({escape(', '.join(models))})" if models else "")
                for host, models in loaded.items()
            )
            table.add_row(
                escape(variant["VariantName"]),
                escape(instance["InstanceName"]),
                "[green]running[/green]" if instance["Healthy"] else "[yellow]not ready[/yellow]",
                str(instance["InFlight"]),
                shown or "[dim]-[/dim]",
            )
    return table


def components_table(components: list[dict[str, Any]], live: dict[str, Any] | None) -> Any:
    """Each inference component (``DescribeInferenceComponent``) and each of its copies as the
    gateway runs it now: where it is placed and what it reserves."""
    from rich.markup import escape
    from rich.table import Table

    running = {c["InferenceComponentName"]: c for c in (live or {}).get("InferenceComponents", [])}
    table = Table(title="inference components", title_justify="left", header_style="bold")
    table.add_column("component")
    table.add_column("status")
    table.add_column("copies", justify="right")
    table.add_column("copy", overflow="fold")
    table.add_column("on instance")
    table.add_column("reserves", overflow="fold")
    table.add_column("in flight", justify="right")
    for component in components:
        name = component["InferenceComponentName"]
        runtime = component.get("RuntimeConfig", {})
        counts = f"{runtime.get('CurrentCopyCount', 0)}/{runtime.get('DesiredCopyCount', 0)}"
        copies = running.get(name, {}).get("InstanceDetails", [])
        first = [escape(name), status_markup(component["InferenceComponentStatus"]), counts]
        if not copies:
            table.add_row(*first, "[dim]-[/dim]", "[dim]-[/dim]", "[dim]-[/dim]", "")
        for i, copy in enumerate(copies):
            reserved = copy.get("Reservation") or {}
            most = reserved.get("MaxMemoryRequiredInMb")
            reserves = (
                f"{reserved.get('NumberOfCpuCoresRequired', 0):g} cores, "
                f"{reserved.get('MinMemoryRequiredInMb', 0)} MiB"
                + (f" (at most {most} MiB)" if most else "")
            )
            state = "" if copy["Healthy"] else " [yellow](not ready)[/yellow]"
            table.add_row(
                *(first if i == 0 else ["", "", ""]),
                escape(copy["InstanceName"]) + state,
                escape(copy.get("PlacedOn", "-")),
                reserves,
                str(copy["InFlight"]),
            )
        if component.get("FailureReason"):
            table.add_row("", "", "", f"[yellow]{escape(component['FailureReason'])}[/yellow]")
    return table


def status_markup(status: str) -> str:
    """An endpoint status in rich markup: green in service, red failed, yellow on the way."""
    style = _STATUS_STYLE.get(status, "yellow")
    return f"[{style}]{status}[/{style}]"


def local_time(value: datetime | None) -> str:
    """A botocore timestamp in local time, to the second; ``-`` when there is none."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
