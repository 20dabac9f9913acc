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


def deployment_table(pending: dict[str, Any]) -> Any | None:
    """A guarded update's steps (``PendingDeploymentSummary``): each stage's status, start and
    message, titled with the share of the traffic on the new fleet and on the old."""
    from rich.markup import escape
    from rich.table import Table

    variants = pending.get("ProductionVariants") or []
    stages = variants[0].get("VariantStatus") or [] if variants else []
    if not stages:
        return None
    desired = sum(float(v.get("DesiredWeight", 0.0)) for v in variants)
    current = sum(float(v.get("CurrentWeight", 0.0)) for v in variants)
    share = current / desired if desired > 0 else 0.0
    title = f"deployment: {share:.0%} of the traffic on the new fleet, {1 - share:.0%} on the old"
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("step")
    table.add_column("started")
    table.add_column("", overflow="fold")
    for stage in stages:
        table.add_row(
            escape(stage["Status"]),
            local_time(stage.get("StartTime")),
            escape(stage.get("StatusMessage", "")),
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


def scaling_tables(
    targets: list[dict[str, Any]], policies: list[dict[str, Any]], activities: list[dict[str, Any]]
) -> list[Any]:
    """Application Auto Scaling's view of an endpoint: its scalable targets (capacity bounds,
    suspended parts), their policies (what each tracks or steps on) and the last activities
    (status and cause), newest first; one dim line when no variant is registered."""
    from rich.markup import escape
    from rich.table import Table

    if not targets:
        return ["[dim]autoscaling: no scalable target (register one to scale this endpoint)[/dim]"]
    shown = Table(title="scalable targets", title_justify="left", header_style="bold")
    for column in ("variant", "min", "max", "suspended"):
        shown.add_column(column, justify="right" if column in ("min", "max") else "left")
    for target in targets:
        state = target.get("SuspendedState") or {}
        suspended = [k.removesuffix("Suspended") for k, on in state.items() if on]
        shown.add_row(
            escape(_variant_of(target["ResourceId"])),
            str(target["MinCapacity"]),
            str(target["MaxCapacity"]),
            ", ".join(suspended) or "-",
        )
    out: list[Any] = [shown]
    if policies:
        table = Table(title="scaling policies", title_justify="left", header_style="bold")
        for column in ("variant", "policy", "type", "on"):
            table.add_column(column, overflow="fold")
        for policy in policies:
            table.add_row(
                escape(_variant_of(policy["ResourceId"])),
                escape(policy["PolicyName"]),
                policy["PolicyType"],
                escape(_policy_summary(policy)),
            )
        out.append(table)
    table = Table(title="last scaling activities", title_justify="left", header_style="bold")
    for column in ("started", "variant", "status", "cause"):
        table.add_column(column, overflow="fold")
    newest = sorted(activities, key=lambda a: str(a.get("StartTime", "")), reverse=True)
    for activity in newest:
        status = activity["StatusCode"]
        style = {"Successful": "green", "Failed": "red"}.get(status)
        table.add_row(
            local_time(activity.get("StartTime")),
            escape(_variant_of(activity["ResourceId"])),
            f"[{style}]{status}[/{style}]" if style else status,
            escape(activity.get("Cause", "")) + _message(activity),
        )
    if not activities:
        table.add_row("-", "-", "-", "[dim]none yet[/dim]")
    out.append(table)
    return out


def _variant_of(resource: str) -> str:
    """``endpoint/{name}/variant/{variant}`` -> the variant."""
    return resource.rsplit("/", 1)[-1]


def _message(activity: dict[str, Any]) -> str:
    from rich.markup import escape

    message = activity.get("StatusMessage")
    return f" [dim]({escape(message)})[/dim]" if message else ""


def _policy_summary(policy: dict[str, Any]) -> str:
    """What a policy acts on, in a line: the tracked metric and target, or the steps' alarm."""
    tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
    if tracking is not None:
        predefined = tracking.get("PredefinedMetricSpecification")
        if predefined is not None:
            metric = predefined["PredefinedMetricType"]
        else:
            custom = tracking.get("CustomizedMetricSpecification", {})
            metric = f"{custom.get('Namespace', '?')}/{custom.get('MetricName', '?')}"
        parts = [f"{metric} = {tracking['TargetValue']:g}"]
        for key, label in (("ScaleOutCooldown", "out"), ("ScaleInCooldown", "in")):
            if key in tracking:
                parts.append(f"cooldown {label} {tracking[key]} s")
        if tracking.get("DisableScaleIn"):
            parts.append("no scale-in")
        return ", ".join(parts)
    steps = policy.get("StepScalingPolicyConfiguration", {})
    alarms = ", ".join(a["AlarmName"] for a in policy.get("Alarms", [])) or "no alarm yet"
    count = len(steps.get("StepAdjustments", []))
    return f"{count} step(s), {steps.get('AdjustmentType', '?')}; alarms: {alarms}"
