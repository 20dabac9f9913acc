"""Batch transform: run whole data sets through an endpoint, the way SageMaker transform jobs do.

``run_batch(BatchConfig.build(...))`` is the Python API; ``tandem batch`` is its command line.
"""

from __future__ import annotations

from gateway.batch.config import AssembleWith, BatchConfig, BatchStrategy, JoinSource, SplitType
from gateway.batch.errors import BatchError, ConfigError, SourceError
from gateway.batch.runner import BatchReport, FileFailure, run_batch, run_batch_async

__all__ = [
    "AssembleWith",
    "BatchConfig",
    "BatchError",
    "BatchReport",
    "BatchStrategy",
    "ConfigError",
    "FileFailure",
    "JoinSource",
    "SourceError",
    "SplitType",
    "run_batch",
    "run_batch_async",
]
