"""Live state of the endpoints the gateway serves.

Only the supervisor writes it (state, restarts, URL, the running handle); the edge and the
dispatcher read it (routing, ``/ping``, ``/endpoints``). What the dispatcher adds per container
(its pooled client, its model manager) the dispatcher keeps itself. Keeping the state in plain
objects lets both sides be tested without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from gateway.capture import CaptureWriter
from gateway.limits import Limits, fair_limits
from pipelines.spec import ContainerSpec, EndpointSpec, Execution, Mode


class ContainerHandle(Protocol):
    """One started instance of a container, as a backend made it; a restart makes a new one."""

    @property
    def url(self) -> str:
        """Base URL the container answers on; stable across restarts of the same container."""
        ...

    @property
    def pid(self) -> int | None:
        """The host process id, where there is one (for logs and orphan checks)."""
        ...

    @property
    def alive(self) -> bool: ...

    def memory(self) -> int | None:
        """Resident bytes the container uses now (its whole process tree); None if unknown."""
        ...

    async def wait(self) -> int:
        """Wait for the container to end; its exit code (128+N for death by signal N)."""
        ...

    async def stop(self, grace: float) -> int:
        """SIGTERM the container and everything it started, SIGKILL after ``grace`` seconds."""
        ...

    async def kill(self) -> int:
        """SIGKILL the container and everything it started, now."""
        ...


class ContainerState(StrEnum):
    STARTING = "Starting"
    HEALTHY = "InService"
    RESTARTING = "Restarting"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class Reservation:
    """What an inference component's copy reserves: CPU cores and memory (MiB) it needs, and
    the memory it may use at most (a docker container is held to it; a process is watched)."""

    cores: float = 0.0
    memory_mb: int = 0
    max_memory_mb: int | None = None


@dataclass(eq=False)
class ContainerRuntime:
    """One running sidecar as the gateway sees it."""

    endpoint: str
    hostname: str
    spec: ContainerSpec
    #: What names its folder, process and image instances: the endpoint's name for its first
    #: deployment, ``name.N`` for the N-th (an update runs beside the one it replaces).
    deployment: str = ""
    #: Base URL of the container, e.g. ``http://127.0.0.1:49152``; set by the backend at start.
    url: str = ""
    state: ContainerState = ContainerState.STARTING
    restarts: int = 0
    #: Folder of the spec file that declared it: a ``command`` runs there.
    source: Path | None = None
    #: The running instance (set by the supervisor): its process tree's memory is measured.
    handle: ContainerHandle | None = None
    #: Bumped each time a (re)start becomes healthy: a restarted container has lost its models.
    generation: int = 0
    #: Called after a restart made the container healthy again (the model manager re-pins).
    on_ready: list[Callable[[], None]] = field(default_factory=list)
    #: MultiModel only: the effective memory and disk cache limits, fixed when it is built.
    limits: Limits | None = None
    #: Its endpoint has ``async_inference``: it must take bodies up to TANDEM_ASYNC_MAX_BYTES.
    asynchronous: bool = False
    #: A copy of an inference component: its reservation (None for an endpoint's own).
    reservation: Reservation | None = None

    def __post_init__(self) -> None:
        self.deployment = self.deployment or self.endpoint

    @property
    def healthy(self) -> bool:
        return self.state is ContainerState.HEALTHY

    @property
    def multi_model(self) -> bool:
        return self.spec.mode is Mode.MULTI_MODEL

    @property
    def memory_limit(self) -> int | None:
        return self.limits.memory if self.limits is not None else None


@dataclass(eq=False)
class Instance:
    """One endpoint: its spec and its containers, in spec order."""

    spec: EndpointSpec
    containers: list[ContainerRuntime] = field(default_factory=list)
    #: Requests being answered now: an endpoint replaced or deleted is stopped once it is 0.
    inflight: int = 0
    #: A copy of an inference component: the component's name (its metrics and logs), and the
    #: instance of the endpoint it is placed on (``variant/index``).
    component: str | None = None
    host: str = ""

    @classmethod
    def from_spec(
        cls,
        spec: EndpointSpec,
        limits: dict[str, Limits] | None = None,
        *,
        deployment: str = "",
    ) -> Instance:
        """One endpoint; ``limits`` gives each MultiModel container's (see ``build``)."""
        limits = limits or {}
        return cls(
            spec=spec,
            containers=[
                ContainerRuntime(
                    endpoint=spec.name,
                    hostname=hostname,
                    spec=container,
                    deployment=deployment,
                    source=spec.source,
                    limits=limits.get(hostname),
                    asynchronous=spec.async_inference is not None,
                )
                for hostname, container in zip(spec.hostnames, spec.containers, strict=True)
            ],
        )

    @cached_property
    def variant_header(self) -> bytes:
        return self.spec.variant.encode("latin-1")

    @property
    def deployment(self) -> str:
        return self.containers[0].deployment if self.containers else self.name

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variant(self) -> str:
        return self.spec.variant

    @property
    def direct(self) -> bool:
        return self.spec.execution is Execution.DIRECT

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.containers)

    def container(self, hostname: str) -> ContainerRuntime | None:
        for c in self.containers:
            if c.hostname == hostname:
                return c
        return None


def build(specs: list[EndpointSpec], state_dir: Path, *, deployment: str = "") -> list[Instance]:
    """The runtime of every (single-variant) spec, each MultiModel container's limits resolved."""
    limits = fair_limits([(spec.name, spec) for spec in specs], state_dir)
    return [
        Instance.from_spec(spec, limits.get(spec.name), deployment=deployment) for spec in specs
    ]


@dataclass(eq=False)
class Variant:
    """One variant of an endpoint: its instances (copies of its containers) and its weight."""

    spec: EndpointSpec
    instances: list[Instance]
    #: Production: the share of the draw (over the sum of every variant's). Changed live.
    weight: float = 1.0
    #: Shadows: the percentage of the production requests copied to it.
    sampling: float | None = None

    @property
    def name(self) -> str:
        return self.spec.variant

    @property
    def shadow(self) -> bool:
        return self.sampling is not None


@dataclass(frozen=True, slots=True)
class Shift:
    """An update's traffic shift (deployment guardrails): ``share`` of the requests drawn go to
    ``to``, the new fleet, the rest stay on the endpoint that holds it (the old fleet)."""

    share: float
    to: LiveEndpoint


@dataclass(eq=False)
class LiveEndpoint:
    """An endpoint as it serves: production variants drawn by weight, shadows copied to.

    What the hot path reads per request is precomputed (``only``, the cumulative weights) and
    replaced whole when weights change, so a request sees the old draw or the new one.
    """

    spec: EndpointSpec
    variants: list[Variant]
    shadows: list[Variant] = field(default_factory=list)
    #: The folder the endpoint's deployments are named after (``name`` or ``name.1``).
    folder: str = ""
    #: Set by the serving side: the endpoint's data capture writer, if it captures.
    capture: CaptureWriter | None = None
    #: While an update shifts traffic step by step: the new fleet and its share (one reference,
    #: replaced whole; None the rest of the time, which is all the hot path then reads).
    shift: Shift | None = None
    #: An endpoint for inference components: each component's copies as a variant, by name
    #: (replaced whole by the component runner, never edited).
    components: Mapping[str, Variant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = self.folder or self.spec.name
        #: Its config is for inference components: it runs only their copies.
        self.for_components = not self.spec.containers and not self.spec.variants
        self._redraw()

    @classmethod
    def single(cls, endpoint: Instance) -> LiveEndpoint:
        """An endpoint of one variant and one instance (spec files before variants, tests)."""
        variant = Variant(endpoint.spec, [endpoint], weight=endpoint.spec.weight or 1.0)
        return cls(spec=endpoint.spec, variants=[variant], folder=endpoint.deployment)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def runtimes(self) -> list[Instance]:
        """Every instance of every variant, shadows included."""
        return [
            i
            for v in (*self.variants, *self.shadows, *self.components.values())
            for i in v.instances
        ]

    @property
    def inflight(self) -> int:
        return sum(r.inflight for r in self.runtimes)

    def variant(self, name: str) -> Variant | None:
        for v in (*self.variants, *self.shadows):
            if v.name == name:
                return v
        return None

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """New weights, in one step (a weight of 0 leaves the draw, not ``TargetVariant``)."""
        for v in self.variants:
            if v.name in weights:
                v.weight = weights[v.name]
        self._redraw()

    def _redraw(self) -> None:
        drawn = [v for v in self.variants if v.weight > 0]
        cumulative, total = [], 0.0
        for v in drawn:
            total += v.weight
            cumulative.append(total)
        cumulative[-1:] = [float("inf")]  # rounding never falls off the end
        #: The draw ``gateway.serving.invocation.choose_variant`` makes per request.
        self.cumulative, self.choices, self.total = cumulative, drawn, total
        self.only = drawn[0] if len(drawn) == 1 else None


def _running(variant: Variant) -> int:
    return sum(1 for i in variant.instances if i.healthy)


def deployment_name(folder: str, spec: EndpointSpec, variant: str, instance: int) -> str:
    """``folder`` for the one instance of a one-variant endpoint, else one name per instance."""
    alone = len(spec.production_variants) == 1 and not spec.shadow_variants
    return folder if alone and instance == 0 else f"{folder}_{variant}_{instance}"


def build_live(
    spec: EndpointSpec,
    state_dir: Path,
    *,
    folder: str = "",
    counts: Mapping[str, int] | None = None,
    weights: Mapping[str, float] | None = None,
) -> LiveEndpoint:
    """The runtime of a whole endpoint; ``counts``/``weights`` override the spec's per variant."""
    folder = folder or spec.name
    counts, weights = counts or {}, weights or {}
    units: list[tuple[str, EndpointSpec]] = []
    plan: list[tuple[EndpointSpec, float | None, list[str]]] = []
    for variant_spec, sampling in [
        *((v, None) for v in spec.production()),
        *spec.shadows(),
    ]:
        count = counts.get(variant_spec.variant, variant_spec.instance_count)
        names = [deployment_name(folder, spec, variant_spec.variant, i) for i in range(count)]
        units += [(name, variant_spec) for name in names]
        plan.append((variant_spec, sampling, names))
    limits = fair_limits(units, state_dir)
    variants: list[Variant] = []
    shadows: list[Variant] = []
    for variant_spec, sampling, names in plan:
        instances = [
            Instance.from_spec(variant_spec, limits.get(name), deployment=name) for name in names
        ]
        weight = weights.get(variant_spec.variant, variant_spec.weight)
        made = Variant(variant_spec, instances, weight=weight, sampling=sampling)
        (variants if sampling is None else shadows).append(made)
    return LiveEndpoint(spec=spec, variants=variants, shadows=shadows, folder=folder)


class EndpointTable:
    """The endpoints that answer requests, by name: a snapshot replaced whole, never edited.

    The hot path reads ``get`` with no lock; the control side builds a new mapping and swaps
    the one reference, so a request sees the old table or the new one, never half of a change.
    Iterating it gives every running instance (``Instance``); ``live()`` the endpoints.
    """

    def __init__(self, endpoints: Iterable[Instance | LiveEndpoint] = ()) -> None:
        live = [e if isinstance(e, LiveEndpoint) else LiveEndpoint.single(e) for e in endpoints]
        self._current: Mapping[str, LiveEndpoint] = MappingProxyType({e.name: e for e in live})

    def get(self, name: str) -> LiveEndpoint | None:
        return self._current.get(name)

    def live(self) -> list[LiveEndpoint]:
        return list(self._current.values())

    def observe(self, name: str) -> dict[str, tuple[float, int]] | None:
        """What ``name`` serves now, per variant: (weight, instances that run, i.e. whose
        containers are all healthy; one restarting is not counted); shadows weigh 0."""
        live = self.get(name)
        if live is None:
            return None
        return {v.name: (v.weight, _running(v)) for v in live.variants} | {
            v.name: (0.0, _running(v)) for v in live.shadows
        }

    def __iter__(self) -> Iterator[Instance]:
        """Every running instance, a new fleet that takes a share of the traffic included."""
        live = list(self._current.values())
        live += [s.to for e in live if (s := e.shift) is not None]
        return iter([r for e in live for r in e.runtimes])

    def __len__(self) -> int:
        return len(self._current)

    def put(self, endpoint: LiveEndpoint) -> LiveEndpoint | None:
        """Serve ``endpoint`` under its name from now on; the one it replaced, if any."""
        new = dict(self._current)
        old = new.get(endpoint.name)
        new[endpoint.name] = endpoint
        self._current = MappingProxyType(new)
        return old

    def remove(self, name: str) -> LiveEndpoint | None:
        new = dict(self._current)
        old = new.pop(name, None)
        self._current = MappingProxyType(new)
        return old
