"""Where inference components' copies go: an endpoint's instances as room (CPU cores and
memory, ``TANDEM_INSTANCE_CPUS``/``TANDEM_INSTANCE_MEMORY_MB`` each) that copies reserve.

A copy goes to the instance with the fewest copies among those with room (spread); when none
has room, ``ManagedInstanceScaling`` adds an instance up to ``MaxInstanceCount``, and an
instance so added goes again once it holds no copy. What finds no room is the reason returned.
Pure bookkeeping: the runner (``components.py``) starts and stops what is placed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.lifecycle.supervisor import Supervisor
from gateway.live import Instance, Reservation
from gateway.state import ComponentRecord
from pipelines.spec import EndpointSpec

logger = logging.getLogger("tandem.components")


@dataclass(eq=False)
class Host:
    """One instance of an endpoint for components: its room and the copies placed on it."""

    variant: str
    index: int
    cores: float
    memory_mb: int
    copies: list[Copy] = field(default_factory=list)

    def fits(self, need: Reservation) -> bool:
        cores = sum(c.reservation.cores for c in self.copies)
        memory = sum(c.reservation.memory_mb for c in self.copies)
        return cores + need.cores <= self.cores and memory + need.memory_mb <= self.memory_mb


@dataclass(eq=False)
class Copy:
    component: str
    instance: Instance
    host: Host
    reservation: Reservation
    supervisor: Supervisor | None = None
    #: Why it is over its reservation (the memory watch), if it is.
    warning: str | None = None


class Placement:
    def __init__(self, capacity: tuple[float, int]) -> None:
        #: One instance's room: (CPU cores, memory MiB).
        self.capacity = capacity
        self._hosts: dict[tuple[str, str], list[Host]] = {}
        self._initial: dict[tuple[str, str], int] = {}
        self._serial = 0

    def instances(self, endpoint: str) -> dict[str, int]:
        """Instances per variant of an endpoint for components."""
        return {v: len(h) for (e, v), h in self._hosts.items() if e == endpoint.lower()}

    def hosts_of(
        self, record: ComponentRecord, config: Mapping[str, Any]
    ) -> tuple[list[Host], int]:
        """The instances of the component's variant (its endpoint's ``config``), and how many
        it may have at most."""
        variant: dict[str, Any] = next(
            (
                v
                for v in config.get("ProductionVariants") or []
                if v["VariantName"] == record.variant
            ),
            {},
        )
        count = int(variant.get("InitialInstanceCount", 1))
        scaling = variant.get("ManagedInstanceScaling") or {}
        most = count
        if scaling.get("Status") == "ENABLED":
            most = int(scaling.get("MaxInstanceCount", count))
        key = (record.endpoint.lower(), record.variant)
        hosts = self._hosts.get(key)
        if hosts is None:
            cores, memory = self.capacity
            hosts = self._hosts[key] = [
                Host(record.variant, i, cores, memory) for i in range(count)
            ]
        self._initial[key] = count
        return hosts, most

    def place(
        self,
        record: ComponentRecord,
        config: Mapping[str, Any],
        spec: EndpointSpec,
        count: int,
        *,
        pending: bool = False,
    ) -> tuple[list[Copy], str | None]:
        """``count`` new copies, each on the instance with the fewest copies that has room."""
        hosts, most = self.hosts_of(record, config)
        request = record.pending_request if pending and record.pending_request else record.request
        need = reservation(request.get("Specification") or {})
        placed: list[Copy] = []
        for i in range(count):
            room = [h for h in hosts if h.fits(need)]
            if not room and len(hosts) < most:
                cores, memory = self.capacity
                hosts.append(Host(record.variant, len(hosts), cores, memory))
                logger.info(
                    "%s: added instance %d (ManagedInstanceScaling)", record.name, len(hosts) - 1
                )
                room = [hosts[-1]]
            if not room:
                return placed, (
                    f"{count - i} of {record.copies} copies are pending: no instance of variant "
                    f"{record.variant} has room for {need.cores:g} CPU cores and "
                    f"{need.memory_mb} MiB ({len(hosts)} instance(s) of {hosts[0].cores:g} cores "
                    f"and {hosts[0].memory_mb} MiB each, shared with other components' copies)."
                    if hosts
                    else f"{count - i} of {record.copies} copies are pending: no instances."
                )
            host = min(room, key=lambda h: len(h.copies))
            self._serial += 1
            folder = f"{record.endpoint}_{record.name}_{self._serial}"
            instance = Instance.from_spec(spec, deployment=folder)
            instance.component = record.name
            instance.host = f"{host.variant}/{host.index}"
            for container in instance.containers:
                container.reservation = need
            copy = Copy(record.name.lower(), instance, host, need)
            host.copies.append(copy)
            placed.append(copy)
        return placed, None

    def unplace(self, copies: list[Copy]) -> None:
        """Give the copies' room back; instances ``ManagedInstanceScaling`` added and that hold
        no copy now go (from the last)."""
        for copy in copies:
            if copy in copy.host.copies:
                copy.host.copies.remove(copy)
        for key, hosts in self._hosts.items():
            while len(hosts) > self._initial.get(key, len(hosts)) and not hosts[-1].copies:
                hosts.pop()


def reservation(spec: Mapping[str, Any]) -> Reservation:
    needs = spec.get("ComputeResourceRequirements") or {}
    return Reservation(
        float(needs.get("NumberOfCpuCoresRequired", 0.0)),
        int(needs.get("MinMemoryRequiredInMb", 0)),
        needs.get("MaxMemoryRequiredInMb"),
    )
