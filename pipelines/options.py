"""The spec's option blocks: batching, data capture and asynchronous inference.

Each is a frozen, strict model on its own; ``pipelines.spec`` puts them on containers and
endpoints (and re-exports them, so callers import from one place).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class BatchingSpec(Strict):
    """Adaptive batching in a built-in container: concurrent one-row requests, one model call."""

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    #: How long a batch waits for more requests; a request alone is never held back.
    max_batch_delay_ms: float = Field(default=2.0, ge=0, le=1000, allow_inf_nan=False)


class CaptureMode(StrEnum):
    INPUT = "Input"
    OUTPUT = "Output"


class DataCaptureSpec(Strict):
    """SageMaker's ``DataCaptureConfig``: a share of requests and answers kept as JSON Lines."""

    enable_capture: bool = True
    initial_sampling_percentage: int = Field(default=100, ge=0, le=100)
    #: ``s3://bucket/prefix``, ``file:///folder`` or a folder (relative: to the spec's folder).
    destination: str = Field(min_length=1, max_length=512)
    capture_options: list[CaptureMode] = Field(
        default_factory=lambda: [CaptureMode.INPUT, CaptureMode.OUTPUT], min_length=1
    )
    #: Content types captured as text with encoding CSV / JSON; any other is BASE64.
    csv_content_types: list[str] = Field(default_factory=lambda: ["text/csv"], max_length=10)
    json_content_types: list[str] = Field(
        default_factory=lambda: ["application/json"], max_length=10
    )

    @field_validator("capture_options", mode="before")
    @classmethod
    def _both(cls, value: Any) -> Any:
        if isinstance(value, list) and "InputAndOutput" in value:
            value = [v for v in value if v != "InputAndOutput"] + ["Input", "Output"]
        return list(dict.fromkeys(value)) if isinstance(value, list) else value


class AsyncInferenceSpec(Strict):
    """SageMaker's ``AsyncInferenceConfig``: where queued requests' answers and failures go."""

    #: ``s3://``, ``file://`` or a folder (relative: to the spec's folder).
    output_path: str = Field(min_length=1, max_length=512)
    failure_path: str | None = Field(default=None, min_length=1, max_length=512)
    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000)
    #: ``http://`` webhooks that get SageMaker's success / error notification (SNS is not done).
    success_webhook: str | None = Field(default=None, pattern=r"^https?://")
    error_webhook: str | None = Field(default=None, pattern=r"^https?://")
