"""Container settings: one typed object read once at start from the contract's environment.

Names follow SageMaker's (``SAGEMAKER_*``, ``SM_MODEL_DIR``); Tandem's own knobs are ``TANDEM_*``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from containers import codecs
from containers.errors import ModelLoadError

FRAMEWORK_ENV = "TANDEM_FRAMEWORK"


class ContainerSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    framework: str | None = Field(default=None, alias="TANDEM_FRAMEWORK")
    host: str = Field(
        default="0.0.0.0", alias="TANDEM_CONTAINER_HOST"
    )  # all interfaces: a container
    port: int = Field(default=8080, ge=0, le=65535, alias="SAGEMAKER_BIND_TO_PORT")
    base_dir: Path = Field(default=Path("/opt/ml"), alias="SAGEMAKER_BASE_DIR")
    #: Single-model artifacts; defaults to ``<base_dir>/model``.
    model_dir: Path | None = Field(default=None, alias="SM_MODEL_DIR")
    #: The entry module of the user's code; unset: ``inference.py`` if there is one.
    program: str | None = Field(default=None, alias="SAGEMAKER_PROGRAM")
    #: The user's code as a local folder (the gateway fetches SageMaker's ``s3://`` one there);
    #: unset: ``<model dir>/code``. Set, its program must exist.
    submit_directory: str | None = Field(default=None, alias="SAGEMAKER_SUBMIT_DIRECTORY")
    #: ``requirements.txt`` beside the code may be installed with pip (an image of its own);
    #: otherwise what it lists must be installed already.
    install_requirements: bool = Field(default=False, alias="TANDEM_INSTALL_REQUIREMENTS")
    default_accept: str = Field(default=codecs.JSON, alias="SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
    workers: int = Field(default=1, ge=1, le=64, alias="SAGEMAKER_MODEL_SERVER_WORKERS")
    #: Seconds one prediction may take.
    timeout: float = Field(default=60.0, gt=0, alias="SAGEMAKER_MODEL_SERVER_TIMEOUT")
    multi_model: bool = Field(default=False, alias="SAGEMAKER_MULTI_MODEL")
    max_payload_mb: float = Field(default=6.0, gt=0, alias="SAGEMAKER_MAX_PAYLOAD_IN_MB")
    safe_port_range: str | None = Field(default=None, alias="SAGEMAKER_SAFE_PORT_RANGE")
    #: Thread pools of the framework (0: sized from the CPUs this process may use).
    intra_op_threads: int = Field(default=0, ge=0, alias="TANDEM_INTRA_OP_THREADS")
    inter_op_threads: int = Field(default=0, ge=0, alias="TANDEM_INTER_OP_THREADS")
    #: Small requests of a model proven faster than this (ms) run on the event loop; 0: never.
    inline_predict_ms: float = Field(default=0.5, ge=0, alias="TANDEM_INLINE_PREDICT_MS")
    #: Adaptive batching: at most this many concurrent requests per model call (0 or 1: off).
    max_batch_size: int = Field(default=0, ge=0, le=1024, alias="TANDEM_MAX_BATCH_SIZE")
    #: How long a forming batch waits for requests still reading their bodies (never for none).
    max_batch_delay_ms: float = Field(default=2.0, ge=0, le=1000, alias="TANDEM_MAX_BATCH_DELAY_MS")
    #: Memory a multi-model container may use (MiB); else the cgroup limit; else unlimited.
    memory_limit_mb: float | None = Field(default=None, gt=0, alias="TANDEM_MEMORY_LIMIT_MB")
    #: scikit-learn's default ``predict_fn`` calls this method.
    sklearn_method: Literal["predict", "predict_proba", "transform", "decision_function"] = Field(
        default="predict", alias="TANDEM_SKLEARN_METHOD"
    )
    log_level: str = Field(
        default="info",
        validation_alias=AliasChoices("TANDEM_LOG_LEVEL", "SAGEMAKER_CONTAINER_LOG_LEVEL"),
    )

    @field_validator("default_accept")
    @classmethod
    def _bare_media_type(cls, value: str) -> str:
        media = codecs.media_type(value)
        if "/" not in media or "*" in media:
            raise ValueError(f"{value!r} is not a concrete media type such as application/json")
        return media

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> str:
        # SageMaker's SAGEMAKER_CONTAINER_LOG_LEVEL is numeric (20 = INFO).
        levels = {"10": "debug", "20": "info", "30": "warning", "40": "error", "50": "critical"}
        text = str(value).strip().lower()
        return levels.get(text, text)

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.base_dir / "model"

    @property
    def code_dir(self) -> Path | None:
        """``SAGEMAKER_SUBMIT_DIRECTORY`` as a local folder (``file://`` too); a remote URL is for
        the gateway to fetch: a container alone cannot, and says so rather than skip the code."""
        url = self.submit_directory
        if not url:
            return None
        if url.startswith("file://"):
            return Path(unquote(urlparse(url).path))
        if "://" in url:
            raise ModelLoadError(
                f"SAGEMAKER_SUBMIT_DIRECTORY={url!r} is not a local folder: the gateway fetches "
                "the code and points the container at its copy"
            )
        return Path(url)

    @property
    def models_dir(self) -> Path:
        """The multi-model models root: relative ``url``s of ``POST /models`` resolve here."""
        return self.base_dir / "models"

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)


def configure_logging(level: str) -> None:
    """Once per process, from the settings' log level (worker processes call it too)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
