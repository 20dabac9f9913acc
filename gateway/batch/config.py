"""What one batch transform job does: SageMaker's ``CreateTransformJob`` knobs, checked up front.

Every rule is checked before a single record is read, so a typo in a filter or a payload limit that
cannot work fails in a second with a message naming the setting, not after an hour of requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from gateway.batch.errors import ConfigError
from gateway.batch.filters import JsonPathFilter, RecordFormat, format_of
from pipelines.spec import NAME_PATTERN

#: SageMaker's ceilings: one payload, and payload x concurrency (``MaxPayloadInMB`` docs).
MAX_PAYLOAD_MB = 100
MAX_TOTAL_MB = 100
DEFAULT_PAYLOAD_MB = 6
MB = 1024 * 1024

EndpointName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=63)]


class SplitType(StrEnum):
    NONE = "None"
    LINE = "Line"


class BatchStrategy(StrEnum):
    SINGLE_RECORD = "SingleRecord"
    MULTI_RECORD = "MultiRecord"


class AssembleWith(StrEnum):
    NONE = "None"
    LINE = "Line"


class JoinSource(StrEnum):
    NONE = "None"
    INPUT = "Input"


class BatchConfig(BaseModel):
    """One job. Unset knobs (``None``) take the container's wishes, then the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    #: Either a running gateway (``endpoint_url`` + ``endpoint``) or a spec Tandem starts itself.
    endpoint_url: str | None = None
    endpoint: EndpointName | None = None
    spec: Path | None = None

    split_type: SplitType = SplitType.NONE
    batch_strategy: BatchStrategy | None = None
    max_payload_mb: int | None = Field(default=None, ge=1, le=MAX_PAYLOAD_MB)
    max_concurrent: int | None = Field(default=None, ge=1, le=MAX_TOTAL_MB)
    assemble_with: AssembleWith = AssembleWith.NONE
    content_type: str | None = None
    accept: str | None = None
    input_filter: str = "$"
    output_filter: str = "$"
    join_source: JoinSource = JoinSource.NONE

    #: Seconds one invocation may take, and how often a throttled or failed call is tried again.
    timeout: float = Field(default=600.0, gt=0, le=3600)
    retries: int = Field(default=3, ge=0, le=20)
    target_container: (
        Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)] | None
    ) = None
    target_model: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None

    #: Write files again even when their ``.out`` exists (a rerun skips them otherwise).
    overwrite: bool = False
    #: ``True``: a live bar; ``False``: plain periodic lines; ``None``: a bar only on a terminal.
    progress: bool | None = None
    #: Extra fsspec options for input and output (e.g. ``{"endpoint_url": ...}`` for S3).
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("input_filter", "output_filter")
    @classmethod
    def _jsonpath(cls, expr: str) -> str:
        JsonPathFilter(expr)  # raises ValueError naming the problem
        return expr.strip()

    @field_validator("content_type", "accept")
    @classmethod
    def _media_type(cls, value: str | None) -> str | None:
        if value is not None and "/" not in value:
            raise ValueError(f"{value!r} is not a media type like text/csv")
        return value

    @model_validator(mode="after")
    def _rules(self) -> BatchConfig:
        if (self.spec is None) == (self.endpoint_url is None):
            raise ValueError("give either spec (Tandem starts the endpoint) or endpoint_url")
        if self.endpoint_url is not None:
            if self.endpoint is None:
                raise ValueError("endpoint_url needs endpoint (the endpoint's name)")
            if not self.endpoint_url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint_url {self.endpoint_url!r} must start with http(s)://")
        if self.max_payload_mb is not None and self.max_concurrent is not None:
            total = self.max_payload_mb * self.max_concurrent
            if total > MAX_TOTAL_MB:
                raise ValueError(
                    f"max_concurrent x max_payload_mb is {total} MB; "
                    f"it must be <= {MAX_TOTAL_MB} MB"
                )
        needs_format = self.input_filter != "$" or self.join_source is JoinSource.INPUT
        if needs_format and self.input_format is RecordFormat.OTHER:
            raise ValueError(
                "input_filter and join_source=Input need content_type text/csv, "
                f"application/json or application/jsonlines (got {self.content_type!r})"
            )
        per_record = self.join_source is JoinSource.INPUT or self.output_filter != "$"
        if (
            per_record
            and self.split_type is SplitType.LINE
            and (self.assemble_with is not AssembleWith.LINE)
        ):
            raise ValueError(
                "join_source=Input or an output_filter with split_type=Line needs "
                "assemble_with=Line (one output line per record)"
            )
        return self

    @property
    def input_format(self) -> RecordFormat:
        return format_of(self.content_type)

    @classmethod
    def build(cls, **values: Any) -> BatchConfig:
        """Validate ``values``; raise ``ConfigError`` with one ``field: rule`` line per problem."""
        try:
            return cls.model_validate(values)
        except PydanticValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "config"
                problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
            raise ConfigError("invalid batch settings:\n  " + "\n  ".join(problems)) from exc


@dataclass(frozen=True, slots=True)
class Plan:
    """The settings a job actually runs with, once the container has had its say."""

    strategy: BatchStrategy
    max_payload_bytes: int
    concurrency: int
    #: Where each setting came from, for the log: ``set``, ``container`` or ``default``.
    sources: dict[str, str]


def resolve(config: BatchConfig, params: dict[str, Any] | None) -> Plan:
    """Explicit settings win, then the container's ``/execution-parameters``, then defaults."""
    params = params or {}
    sources: dict[str, str] = {}

    strategy = config.batch_strategy
    sources["BatchStrategy"] = "set"
    if strategy is None:
        raw = str(params.get("BatchStrategy", "")).replace("_", "").lower()
        strategy = {"multirecord": BatchStrategy.MULTI_RECORD}.get(raw)
        strategy = strategy or {"singlerecord": BatchStrategy.SINGLE_RECORD}.get(raw)
        sources["BatchStrategy"] = "container" if strategy else "default"
        strategy = strategy or BatchStrategy.MULTI_RECORD

    payload = config.max_payload_mb
    sources["MaxPayloadInMB"] = "set"
    if payload is None:
        payload = _positive_int(params.get("MaxPayloadInMB"), MAX_PAYLOAD_MB)
        sources["MaxPayloadInMB"] = "container" if payload else "default"
        payload = payload or DEFAULT_PAYLOAD_MB

    concurrency = config.max_concurrent
    sources["MaxConcurrentTransforms"] = "set"
    if concurrency is None:
        concurrency = _positive_int(params.get("MaxConcurrentTransforms"), MAX_TOTAL_MB)
        sources["MaxConcurrentTransforms"] = "container" if concurrency else "default"
        # A container's wish is trimmed to the 100 MB ceiling; an explicit one was checked already.
        concurrency = max(1, min(concurrency or 1, MAX_TOTAL_MB // payload))
    if concurrency * payload > MAX_TOTAL_MB:
        raise ConfigError(
            f"max_concurrent ({concurrency}) x max_payload_mb ({payload}) "
            f"must be <= {MAX_TOTAL_MB} MB"
        )
    return Plan(strategy, payload * MB, concurrency, sources)


def _positive_int(value: Any, ceiling: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        return None
    return min(int(value), ceiling)
