"""Where capture files go: S3 through fsspec (one put per object), or a local folder.

S3 has no append, so every flush is an object of its own; a local file is written beside its
final name and renamed, so a reader never sees half of one. Blocking: run it in a thread.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gateway.atomic import write_atomic
from pipelines.errors import TandemError


class CaptureStoreError(TandemError):
    """The destination cannot be written; the message names it and why."""

    invalid_input = True


class Store:
    """Writes whole objects under one destination (s3://, file:// or a folder)."""

    def __init__(self, destination: str, *, s3_endpoint_url: str | None = None) -> None:
        self.destination = destination.rstrip("/")
        self._s3 = urlparse(destination).scheme == "s3"
        self._endpoint_url = s3_endpoint_url
        self._fs: Any = None
        self._lock = threading.Lock()

    def url(self, *parts: str) -> str:
        return "/".join([self.destination, *parts])

    def put(self, key: str, data: bytes) -> None:
        """``data`` as the object ``key`` (a ``/`` path under the destination), whole."""
        try:
            if self._s3:
                self._filesystem().pipe_file(self.url(key).removeprefix("s3://"), data)
                return
            write_atomic(self._local(key), data)
        except Exception as exc:
            raise CaptureStoreError(f"cannot write {self.url(key)}: {exc}") from exc

    def keys(self, prefix: str) -> list[str]:
        """Every ``.jsonl`` object below ``prefix``, as keys under the destination."""
        if self._s3:
            base = self.url(prefix).removeprefix("s3://")
            root = self.destination.removeprefix("s3://") + "/"
            try:
                found = self._filesystem().find(base)
            except FileNotFoundError:
                return []
            return [k.removeprefix(root) for k in found if k.endswith(".jsonl")]
        top, folder = self._local(prefix), self._local("")
        return [p.relative_to(folder).as_posix() for p in top.rglob("*.jsonl")]

    def read(self, key: str) -> bytes:
        if self._s3:
            data: bytes = self._filesystem().cat_file(self.url(key).removeprefix("s3://"))
            return data
        return self._local(key).read_bytes()

    def remove(self, key: str) -> None:
        if self._s3:
            self._filesystem().rm_file(self.url(key).removeprefix("s3://"))
        else:
            self._local(key).unlink(missing_ok=True)

    def _local(self, key: str) -> Path:
        parsed = urlparse(self.destination)
        base = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(self.destination)
        return base.joinpath(*key.split("/"))

    def _filesystem(self) -> Any:
        with self._lock:
            if self._fs is None:
                import fsspec

                options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
                if self._endpoint_url:
                    options["endpoint_url"] = self._endpoint_url
                self._fs = fsspec.filesystem("s3", **options)
            return self._fs


def _scheme(destination: str) -> str:
    scheme = urlparse(destination).scheme
    if scheme not in ("", "s3", "file"):
        raise CaptureStoreError(
            f"{destination!r}: a capture destination is s3://, file:// or a folder"
        )
    return scheme


def check_destination(destination: str, *, s3_endpoint_url: str | None = None) -> None:
    """Write and remove a small probe under ``destination``; ``CaptureStoreError`` if it fails."""
    scheme = _scheme(destination)
    if scheme == "s3" and s3_endpoint_url is None:
        from gateway.settings import GatewaySettings

        s3_endpoint_url = GatewaySettings().s3_endpoint_url
    store = Store(destination, s3_endpoint_url=s3_endpoint_url)
    key = f".tandem-probe-{uuid.uuid4().hex}"
    try:
        store.put(key, b"probe")
        store.remove(key)
    except CaptureStoreError as exc:
        raise CaptureStoreError(f"the capture destination cannot be written: {exc}") from exc
    except Exception as exc:
        raise CaptureStoreError(
            f"the capture destination {destination} cannot be written: {exc}"
        ) from exc


def latest_records(
    destination: str,
    endpoint: str,
    count: int,
    *,
    variant: str | None = None,
    s3_endpoint_url: str | None = None,
) -> list[dict[str, Any]]:
    """The newest ``count`` records of ``endpoint`` (one variant, or all), oldest first.

    Object names sort by time (``variant/yyyy/mm/dd/hh/MM-SS-mmm-uuid.jsonl``), so the newest
    files are read, newest first, until ``count`` records are found; those are then put in the
    order of their ``inferenceTime``.
    """
    import json

    _scheme(destination)
    store = Store(destination, s3_endpoint_url=s3_endpoint_url)
    prefix = f"{endpoint}/{variant}" if variant else endpoint
    found: list[dict[str, Any]] = []
    key = prefix
    try:
        keys = store.keys(prefix)
        # By time across variants: the path below the variant is the time.
        keys.sort(key=lambda k: k.split("/", 2)[2] if k.count("/") >= 2 else k)
        for key in reversed(keys):
            lines = store.read(key).decode("utf-8").splitlines()
            found[:0] = [json.loads(line) for line in lines if line.strip()]
            if len(found) >= count:
                break
    except ValueError as exc:  # not UTF-8, not JSON
        raise CaptureStoreError(f"{store.url(key)} is not JSON Lines: {exc}") from exc
    except Exception as exc:  # S3 refused, a folder that cannot be read ...
        raise CaptureStoreError(f"cannot read {store.url(key)}: {exc}") from exc
    # Variants' files interleave in time: the records themselves in time order (ISO 8601 sorts).
    found.sort(key=lambda r: str(r.get("eventMetadata", {}).get("inferenceTime", "")))
    return found[-count:] if count > 0 else []
