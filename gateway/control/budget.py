"""The host budget at the API: what all endpoints together may run, counted in containers.

An instance of a variant runs one process (or docker container) per container of its model, so
an endpoint costs the sum over its variants (shadows included) of instances x containers; while
an update runs it costs its old and its new config together (blue/green starts the new beside
the old, as SageMaker's own fleets need room for both). A ``Failed`` endpoint runs nothing and
costs nothing. ``CreateEndpoint``, ``UpdateEndpoint``, ``UpdateEndpointWeightsAndCapacities``
(and a spec file applied) are admitted inside the transaction that writes them, so two calls at
once cannot both take the last room; beyond the budget SageMaker's ``ResourceLimitExceeded``
names the limit, and nothing is written or started. ``CreateEndpointConfig`` is refused at once
when the config alone could never fit. The running side keeps its own count
(``gateway.lifecycle.budget``), which bounds what a restart brings back too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.control.shapes import member_path
from gateway.control.translate import containers_of
from gateway.errors import ResourceLimitExceeded
from gateway.state import Deployed, EndpointRecord, EndpointStatus

#: The setting that sets the budget, named in every refusal.
SETTING = "TANDEM_MAX_CONTAINERS"

ModelOf = Callable[[str], Mapping[str, Any]]


def config_cost(
    config: Mapping[str, Any],
    model_of: ModelOf,
    desired: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[int, list[str]]:
    """Containers ``config`` runs, and one line per variant saying how (for messages)."""
    total, parts = 0, []
    for member in ("ProductionVariants", "ShadowProductionVariants"):
        for i, variant in enumerate(config.get(member) or []):
            name = variant["VariantName"]
            if not variant.get("ModelName"):
                continue  # an instance for inference components: its copies are counted
            asked = (desired or {}).get(name, {}).get("count")
            count = int(asked) if asked is not None else int(variant.get("InitialInstanceCount", 1))
            at = (
                "desiredInstanceCount"
                if asked is not None
                else member_path(member, i, "InitialInstanceCount")
            )
            containers = max(1, len(containers_of(dict(model_of(variant["ModelName"])))))
            total += count * containers
            parts.append(f"variant {name} ({at}): {count} instance(s) x {containers} container(s)")
    return total, parts


def endpoint_cost(record: EndpointRecord) -> int:
    """Containers ``record`` holds now: its serving config, plus its pending one."""
    if record.status is EndpointStatus.FAILED:
        return 0
    total = 0
    if record.deployed is not None:
        total += _deployed_cost(record.deployed, record.desired)
    if record.pending_deployed is not None:
        total += _deployed_cost(record.pending_deployed, {})
    return total


def admit(limit: int | None) -> Callable[[EndpointRecord, list[EndpointRecord]], None] | None:
    """The store's ``admit`` check for ``limit`` containers (None: no limit)."""
    if limit is None:
        return None

    def check(record: EndpointRecord, others: list[EndpointRecord]) -> None:
        used = sum(endpoint_cost(o) for o in others)
        asked = endpoint_cost(record)
        if used + asked > limit:
            parts = [
                *_parts(record.deployed, record.desired),
                *_parts(record.pending_deployed, {}),
            ]
            raise _refusal(limit, used, asked, f'endpoint "{record.name}"', parts)

    return check


def check_config(
    limit: int | None, name: str, config: Mapping[str, Any], model_of: ModelOf
) -> None:
    """Refuse a config that could never run here, whatever else runs."""
    if limit is None:
        return
    asked, parts = config_cost(config, model_of)
    if asked > limit:
        raise _refusal(limit, 0, asked, f'endpoint configuration "{name}"', parts)


def _deployed_cost(deployed: Deployed, desired: Mapping[str, Mapping[str, float]]) -> int:
    return config_cost(deployed.request, lambda m: deployed.model(m) or {}, desired)[0]


def _parts(deployed: Deployed | None, desired: Mapping[str, Mapping[str, float]]) -> list[str]:
    if deployed is None:
        return []
    return config_cost(deployed.request, lambda m: deployed.model(m) or {}, desired)[1]


def _refusal(
    limit: int, used: int, asked: int, what: str, parts: list[str]
) -> ResourceLimitExceeded:
    return ResourceLimitExceeded(
        f"The host limit 'containers for endpoint usage' ({SETTING}) is {limit} containers, "
        f"with current utilization of {used} containers and a request delta of {asked} "
        f"containers ({what}: {'; '.join(parts)}). Delete or shrink other endpoints, ask for "
        f"fewer instances, or raise {SETTING}."
    )
