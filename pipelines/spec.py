"""The endpoint spec: one YAML file per endpoint, field names after SageMaker's ``CreateModel``.

Validation is strict (unknown fields are errors) and complete: every problem in every file is
reported at once, each naming the file, the field and the rule, so that nothing starts until all
specs are valid. The rules on one value alone (sizes, TargetModel paths, environment entries)
are in ``pipelines.values`` and re-exported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import yaml
from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines.errors import TandemError
from pipelines.options import AsyncInferenceSpec as AsyncInferenceSpec  # re-exported
from pipelines.options import BatchingSpec as BatchingSpec
from pipelines.options import CaptureMode as CaptureMode
from pipelines.options import DataCaptureSpec as DataCaptureSpec
from pipelines.options import Strict
from pipelines.values import MAX_TARGET_MODEL as MAX_TARGET_MODEL  # re-exported
from pipelines.values import check_environment, env_str
from pipelines.values import check_target_model as check_target_model
from pipelines.values import parse_size as parse_size

MAX_CONTAINERS = 15
#: SageMaker's limit of production (and of shadow) variants per endpoint config.
MAX_VARIANTS = 10
#: Fields that only a MultiModel container takes.
MULTI_MODEL_FIELDS = (
    "memory_limit",
    "disk_cache_limit",
    "preload",
    "model_cache",
    "load_wait_timeout",
)
_NAMED = re.compile(r"^([a-z_]+): ")

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=63)]


class Execution(StrEnum):
    SERIAL = "Serial"
    DIRECT = "Direct"


class Mode(StrEnum):
    SINGLE_MODEL = "SingleModel"
    MULTI_MODEL = "MultiModel"


class ModelCache(StrEnum):
    """SageMaker's ``ModelCacheSetting``: Disabled unloads a model after each request."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"


class RoutingStrategy(StrEnum):
    """SageMaker's ``RoutingConfig.RoutingStrategy``: how a variant's instances share requests.

    A MultiModel variant also sends a model's requests to where it is loaded (docs/instances.md).
    """

    LEAST_OUTSTANDING_REQUESTS = "LEAST_OUTSTANDING_REQUESTS"
    RANDOM = "RANDOM"


class Framework(StrEnum):
    SKLEARN = "sklearn"
    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"


class ContainerSpec(Strict):
    """One sidecar: a built-in framework, a command, or an image that speaks the contract."""

    hostname: Name | None = None
    framework: Framework | None = None
    command: list[str] | None = Field(default=None, min_length=1)
    image: str | None = None
    mode: Mode = Mode.SINGLE_MODEL
    model_data: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    #: MultiModel only: bytes the container may use (an int is MiB; "2GiB", "512MB" ...).
    memory_limit: int | None = None
    #: MultiModel only: bytes of unpacked models kept on disk.
    disk_cache_limit: int | None = None
    #: MultiModel only: TargetModels loaded at start and never evicted.
    preload: list[str] = Field(default_factory=list)
    #: MultiModel only: ``Disabled`` unloads a model after each request.
    model_cache: ModelCache = ModelCache.ENABLED
    #: MultiModel only: seconds a request waits for its model to load (then 429, the load goes on).
    load_wait_timeout: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)
    #: Built-in frameworks: stack concurrent requests into one model call (off when absent).
    batching: BatchingSpec | None = None

    @field_validator("memory_limit", "disk_cache_limit", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        return None if value is None else parse_size(value)

    @field_validator("preload")
    @classmethod
    def _targets(cls, targets: list[str]) -> list[str]:
        for target in targets:
            check_target_model(target)
        if len(set(targets)) != len(targets):
            raise ValueError("preload lists a model twice")
        return targets

    @field_validator("environment")
    @classmethod
    def _environment_rules(cls, env: dict[str, str]) -> dict[str, str]:
        return check_environment(env)

    @field_validator("environment", mode="before")
    @classmethod
    def _stringify(cls, env: Any) -> Any:
        # YAML turns `8080` and `true` into int/bool; environment variables are strings.
        if isinstance(env, dict):
            return {k: env_str(v) for k, v in env.items()}
        return env

    @model_validator(mode="after")
    def _runs_something(self) -> ContainerSpec:
        if self.framework is None and self.command is None and self.image is None:
            raise ValueError("needs one of framework, command or image")
        if self.framework is not None and self.command is not None:
            raise ValueError(
                "framework and command are exclusive: a command replaces the built-in server"
            )
        if self.mode is Mode.MULTI_MODEL and not self.model_data:
            raise ValueError(
                "a MultiModel container needs model_data (the prefix its models live under)"
            )
        if self.mode is Mode.MULTI_MODEL and urlparse(self.model_data or "").scheme not in (
            "",
            "file",
            "s3",
        ):
            raise ValueError("a MultiModel model_data prefix must be a folder, file:// or s3://")
        if self.mode is not Mode.MULTI_MODEL:
            extra = [f for f in MULTI_MODEL_FIELDS if f in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only valid with mode: MultiModel")
        return self


def _check_hostnames(execution: Execution, containers: list[ContainerSpec]) -> None:
    named = [c.hostname for c in containers if c.hostname is not None]
    if execution is Execution.DIRECT and len(named) != len(containers):
        raise ValueError("Direct execution needs a hostname on every container")
    if named and len(named) != len(containers):
        raise ValueError("hostnames are all-or-none: name every container or none")
    if len(set(named)) != len(named):
        dupes = sorted({h for h in named if named.count(h) > 1})
        raise ValueError(f"hostnames must be unique (repeated: {', '.join(dupes)})")
    multi = sum(c.mode is Mode.MULTI_MODEL for c in containers)
    if execution is Execution.SERIAL and multi > 1:
        raise ValueError("a Serial chain holds at most one MultiModel container")


class VariantSpec(Strict):
    """One production variant: its own model (containers), weight and number of instances."""

    name: Name
    execution: Execution = Execution.SERIAL
    containers: list[ContainerSpec] = Field(min_length=1, max_length=MAX_CONTAINERS)
    #: Share of the traffic: this weight over the sum of every production variant's.
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    #: Copies of the variant's containers that share its traffic.
    instance_count: int = Field(default=1, ge=1, le=64)
    #: Which instance takes a request (SageMaker's ``RoutingConfig``).
    routing_strategy: RoutingStrategy = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS

    @model_validator(mode="after")
    def _hostnames(self) -> VariantSpec:
        _check_hostnames(self.execution, self.containers)
        return self


class ShadowVariantSpec(VariantSpec):
    """A shadow: gets a copy of a share of the requests; its answers are never sent back."""

    sampling_percentage: float = Field(default=100.0, ge=0, le=100, allow_inf_nan=False)


class EndpointSpec(Strict):
    """One endpoint: 1 to 15 containers, reached one at a time (Direct) or chained (Serial).

    The top-level ``containers`` (with ``execution``, ``variant``, ``weight``,
    ``instance_count``, ``routing_strategy``) is one production variant; ``variants`` lists
    several instead. The runtime works on ``production()``: one single-variant spec per variant.
    """

    name: Name
    execution: Execution = Execution.SERIAL
    variant: Name = "AllTraffic"
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    instance_count: int = Field(default=1, ge=1, le=64)
    routing_strategy: RoutingStrategy = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS
    #: Deadline in seconds for one whole request, every step of a chain included.
    timeout: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)
    variants: list[VariantSpec] = Field(default_factory=list, max_length=MAX_VARIANTS)
    shadow_variants: list[ShadowVariantSpec] = Field(default_factory=list, max_length=MAX_VARIANTS)
    #: After ``variants``: whether it may be empty depends on them.
    containers: list[ContainerSpec] = Field(
        default_factory=list, max_length=MAX_CONTAINERS, validate_default=True
    )
    data_capture: DataCaptureSpec | None = None
    async_inference: AsyncInferenceSpec | None = None
    #: The folder the spec came from; relative ``model_data`` paths resolve against it.
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("containers")
    @classmethod
    def _some(cls, containers: list[ContainerSpec], info: ValidationInfo) -> list[ContainerSpec]:
        if not containers and "variants" in info.data and not info.data["variants"]:
            raise ValueError("Field required: at least 1 container (or a variants list)")
        return containers

    @model_validator(mode="after")
    def _hostnames(self) -> EndpointSpec:
        if self.variants:
            if self.containers:
                raise ValueError("give containers (one variant) or variants, not both")
            shorthand = {"execution", "variant", "weight", "instance_count", "routing_strategy"}
            extra = sorted(shorthand & self.model_fields_set)
            if extra:
                raise ValueError(f"{', '.join(extra)}: set these per variant under variants")
        else:
            _check_hostnames(self.execution, self.containers)
        names = [v.name for v in self.production_variants] + [v.name for v in self.shadow_variants]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"variant names must be unique (repeated: {', '.join(dupes)})")
        total = sum(v.weight for v in self.production_variants)
        if total <= 0:
            raise ValueError("the production variants' weights are all 0: no request could go")
        if not math.isfinite(total):
            raise ValueError("the production variants' weights add up past the largest number")
        return self

    @property
    def production_variants(self) -> list[VariantSpec]:
        """Every production variant, the one-variant shorthand included."""
        if self.variants:
            return list(self.variants)
        return [
            VariantSpec.model_construct(
                name=self.variant,
                execution=self.execution,
                containers=self.containers,
                weight=self.weight,
                instance_count=self.instance_count,
                routing_strategy=self.routing_strategy,
            )
        ]

    def production(self) -> list[EndpointSpec]:
        """One single-variant spec per production variant: what the runtime starts."""
        if not self.variants:
            return [self]
        return [self.of_variant(v) for v in self.variants]

    def shadows(self) -> list[tuple[EndpointSpec, float]]:
        """One single-variant spec per shadow variant, with the percentage copied to it."""
        return [(self.of_variant(v), v.sampling_percentage) for v in self.shadow_variants]

    def of_variant(self, variant: VariantSpec) -> EndpointSpec:
        # Only what the variant sets counts as set (exports write back just what was given).
        routing = {
            k: variant.routing_strategy for k in variant.model_fields_set & {"routing_strategy"}
        }
        return self.model_copy(
            update={
                "variant": variant.name,
                "execution": variant.execution,
                "containers": variant.containers,
                "weight": variant.weight,
                "instance_count": variant.instance_count,
                **routing,
                "variants": [],
                "shadow_variants": [],
            }
        )

    @property
    def all_containers(self) -> list[ContainerSpec]:
        """The containers of every variant, shadows included (for roots, images, limits)."""
        out = list(self.containers)
        for v in [*self.variants, *self.shadow_variants]:
            out.extend(v.containers)
        return out

    @property
    def hostnames(self) -> list[str]:
        """Every container's hostname; unnamed containers are ``container-1`` .. ``container-n``."""
        return [c.hostname or f"container-{i}" for i, c in enumerate(self.containers, start=1)]

    def resolve(self, location: str) -> str:
        """A path or URL of the spec (model data, capture, output) made absolute or kept a URL."""
        if urlparse(location).scheme in {"s3", "file", "http", "https", "gs"}:
            return location
        path = Path(location).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source / path
        return str(path.resolve())

    def model_data_url(self, container: ContainerSpec) -> str | None:
        """``model_data`` as an absolute path or a URL, relative paths resolved against the spec."""
        data = container.model_data
        return None if data is None else self.resolve(data)


class SpecError(TandemError):
    """Every problem found in one or more spec files, one ``file: field: rule`` line each."""

    invalid_input = True

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid endpoint spec:\n  " + "\n  ".join(problems))


def _field(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_spec(path: str | Path) -> EndpointSpec:
    """Read and validate one spec file; raise ``SpecError`` naming every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise SpecError(
            [f"{path}: (top level): must be a mapping of fields, got {type(raw).__name__}"]
        )
    try:
        return EndpointSpec.model_validate({**raw, "source": path.resolve().parent})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = list(err["loc"])
            # A rule across fields names the field it is about: "containers: needs ...".
            if (named := _NAMED.match(msg)) and named.group(1) in EndpointSpec.model_fields:
                loc, msg = [*loc, named.group(1)], msg[named.end() :]
            problems.append(f"{path}: {_field(loc)}: {msg}")
        raise SpecError(problems) from exc


def load_specs(paths: Iterable[str | Path]) -> list[EndpointSpec]:
    """Validate every file; endpoint names must be unique across them."""
    specs: list[EndpointSpec] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if spec.name in seen:
            problems.append(
                f"{path}: name: endpoint {spec.name!r} is already defined in {seen[spec.name]}"
            )
        seen[spec.name] = Path(path)
        specs.append(spec)
    if problems:
        raise SpecError(problems)
    return specs
