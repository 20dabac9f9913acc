"""Data capture: a sampled share of requests and answers, kept as JSON Lines in SageMaker's shape.

``CaptureWriter`` is made per endpoint from its ``DataCaptureSpec``. The hot path asks
``sampled()`` and hands the bytes to ``offer()``, which only appends to a bounded buffer; a
background task turns them into records (``records.py``) and writes one object per endpoint,
variant and hour under the destination (``destination.py``: S3 through fsspec, or a folder),
retrying a store that fails. ``check_destination`` refuses, at create time, a destination that
cannot be written.
"""

from gateway.capture.destination import CaptureStoreError, check_destination, latest_records
from gateway.capture.records import capture_record
from gateway.capture.writer import CaptureCollector, CaptureWriter

__all__ = [
    "CaptureCollector",
    "CaptureStoreError",
    "CaptureWriter",
    "capture_record",
    "check_destination",
    "latest_records",
]
