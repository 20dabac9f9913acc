"""Where copies go (``Placement``): spread over the instances with room, pending with the reason
when none has, an instance added by ``ManagedInstanceScaling`` and given back once empty."""

from __future__ import annotations

from typing import Any

from gateway.lifecycle.placement import Placement
from gateway.state import ComponentRecord, ComponentStatus
from pipelines.spec import EndpointSpec

SPEC = EndpointSpec.model_validate(
    {"name": "ep", "containers": [{"command": ["python", "-c", "pass"]}]}
)


def record(name: str, copies: int, cores: float, memory: int) -> ComponentRecord:
    needs = {"NumberOfCpuCoresRequired": cores, "MinMemoryRequiredInMb": memory}
    request = {"Specification": {"ComputeResourceRequirements": needs}}
    return ComponentRecord(
        name, f"arn:{name}", "ep", "AllTraffic", ComponentStatus.CREATING, None, 0.0, 0.0,
        request, {}, copies,
    )  # fmt: skip


def config(instances: int, scaling: dict[str, Any] | None = None) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "InitialInstanceCount": instances}
    if scaling is not None:
        variant["ManagedInstanceScaling"] = scaling
    return {"ProductionVariants": [variant]}


def test_copies_spread_over_the_instances_with_room() -> None:
    placement = Placement((2.0, 2048))
    placed, reason = placement.place(record("a", 4, 0.5, 256), config(2), SPEC, 4)
    assert reason is None
    assert [c.instance.host for c in placed] == [
        "AllTraffic/0", "AllTraffic/1", "AllTraffic/0", "AllTraffic/1",
    ]  # fmt: skip
    assert all(c.instance.component == "a" for c in placed)
    assert placed[0].instance.containers[0].reservation is not None
    assert len({c.instance.deployment for c in placed}) == 4


def test_what_fits_nowhere_is_pending_with_the_reason() -> None:
    placement = Placement((2.0, 2048))
    placed, reason = placement.place(record("big", 3, 1.5, 1024), config(2), SPEC, 3)
    assert len(placed) == 2
    assert reason is not None and reason.startswith("1 of 3 copies are pending")
    assert "1.5 CPU cores and 1024 MiB" in reason
    # Room given back is room for the copy that waited.
    placement.unplace(placed[:1])
    again, reason = placement.place(record("big", 3, 1.5, 1024), config(2), SPEC, 1)
    assert len(again) == 1 and reason is None


def test_managed_instance_scaling_adds_an_instance_and_gives_it_back() -> None:
    scaling = {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 2}
    placement = Placement((2.0, 2048))
    placed, reason = placement.place(record("a", 3, 1.0, 1024), config(1, scaling), SPEC, 3)
    assert len(placed) == 3 and reason is None
    assert placement.instances("ep") == {"AllTraffic": 2}
    more, reason = placement.place(record("a", 5, 1.0, 1024), config(1, scaling), SPEC, 2)
    assert len(more) == 1  # the last room on the second instance
    assert reason is not None and "2 instance(s)" in reason  # at MaxInstanceCount
    placement.unplace([c for c in [*placed, *more] if c.host.index == 1])
    assert placement.instances("ep") == {"AllTraffic": 1}
