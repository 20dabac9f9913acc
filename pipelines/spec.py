"""The endpoint spec: one YAML file per endpoint, field names after SageMaker's ``CreateModel``.

Validation is strict (unknown fields are errors) and complete: every problem in every file is
reported at once, each naming the file, the field and the rule, so that nothing starts until all
specs are valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.errors import TandemError

MAX_CONTAINERS = 15
MAX_TARGET_MODEL = 1024
#: Fields that only a MultiModel container takes.
MULTI_MODEL_FIELDS = (
    "memory_limit",
    "disk_cache_limit",
    "preload",
    "model_cache",
    "load_wait_timeout",
)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
MAX_ENV_ENTRIES = 100
MAX_ENV_LEN = 1024

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
ENV_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_ENV_KEY = re.compile(ENV_KEY_PATTERN)

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


class Framework(StrEnum):
    SKLEARN = "sklearn"
    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ContainerSpec(_Strict):
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
    load_wait_timeout: float = Field(default=60.0, gt=0, le=3600)

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
        if len(env) > MAX_ENV_ENTRIES:
            raise ValueError(f"at most {MAX_ENV_ENTRIES} entries (got {len(env)})")
        for key, value in env.items():
            if not _ENV_KEY.match(key) or len(key) > MAX_ENV_LEN:
                raise ValueError(
                    f"key {key!r} must match {ENV_KEY_PATTERN} and be <= {MAX_ENV_LEN}"
                )
            if len(value) > MAX_ENV_LEN:
                raise ValueError(f"value of {key!r} must be <= {MAX_ENV_LEN} characters")
        return env

    @field_validator("environment", mode="before")
    @classmethod
    def _stringify(cls, env: Any) -> Any:
        # YAML turns `8080` and `true` into int/bool; environment variables are strings.
        if isinstance(env, dict):
            return {k: _env_str(v) for k, v in env.items()}
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


class EndpointSpec(_Strict):
    """One endpoint: 1 to 15 containers, reached one at a time (Direct) or chained (Serial)."""

    name: Name
    execution: Execution = Execution.SERIAL
    variant: Name = "AllTraffic"
    #: Deadline in seconds for one whole request, every step of a chain included.
    timeout: float = Field(default=60.0, gt=0, le=3600)
    containers: list[ContainerSpec] = Field(min_length=1, max_length=MAX_CONTAINERS)
    #: The folder the spec came from; relative ``model_data`` paths resolve against it.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _hostnames(self) -> EndpointSpec:
        named = [c.hostname for c in self.containers if c.hostname is not None]
        if self.execution is Execution.DIRECT and len(named) != len(self.containers):
            raise ValueError("Direct execution needs a hostname on every container")
        if named and len(named) != len(self.containers):
            raise ValueError("hostnames are all-or-none: name every container or none")
        if len(set(named)) != len(named):
            dupes = sorted({h for h in named if named.count(h) > 1})
            raise ValueError(f"hostnames must be unique (repeated: {', '.join(dupes)})")
        multi = sum(c.mode is Mode.MULTI_MODEL for c in self.containers)
        if self.execution is Execution.SERIAL and multi > 1:
            raise ValueError("a Serial chain holds at most one MultiModel container")
        return self

    @property
    def hostnames(self) -> list[str]:
        """Every container's hostname; unnamed containers are ``container-1`` .. ``container-n``."""
        return [c.hostname or f"container-{i}" for i, c in enumerate(self.containers, start=1)]

    def model_data_url(self, container: ContainerSpec) -> str | None:
        """``model_data`` as an absolute path or a URL, relative paths resolved against the spec."""
        data = container.model_data
        if data is None:
            return None
        if urlparse(data).scheme in {"s3", "file", "http", "https", "gs"}:
            return data
        path = Path(data).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source / path
        return str(path.resolve())


def parse_size(value: Any) -> int:
    """Bytes from an int (MiB, like ``TANDEM_MEMORY_LIMIT_MB``) or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 512 (MiB), '2GiB' or '500MB'")
    if isinstance(value, int | float):
        size = int(value * 2**20)
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        number, unit = match.groups()
        factor = _UNITS[(unit or "").lower()] if unit else 2**20
        size = int(float(number) * factor)
    else:
        raise ValueError(f"{str(value)[:40]!r} is not a size such as 512 (MiB), '2GiB' or '500MB'")
    if size <= 0:
        raise ValueError("must be a positive size")
    return size


def check_target_model(target: str) -> str:
    """A TargetModel is a relative path under the prefix that cannot escape it; else ValueError."""
    if not isinstance(target, str) or not 1 <= len(target) <= MAX_TARGET_MODEL:
        raise ValueError(f"must be 1 to {MAX_TARGET_MODEL} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        raise ValueError("must not contain NUL or other control characters")
    if _ESCAPE.search(target):
        raise ValueError("must not contain URL-encoded sequences (%XX)")
    if "\\" in target:
        raise ValueError("must use '/' between folders, not '\\'")
    if target.startswith("/") or "://" in target or re.match(r"^[A-Za-z]:", target):
        raise ValueError("must be a path relative to the model_data prefix")
    parts = target.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("must not contain '.', '..' or empty path segments")
    return target


class SpecError(TandemError):
    """Every problem found in one or more spec files, one ``file: field: rule`` line each."""

    invalid_input = True

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid endpoint spec:\n  " + "\n  ".join(problems))


def _env_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


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
            problems.append(f"{path}: {_field(err['loc'])}: {msg}")
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
