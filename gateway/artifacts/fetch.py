"""Where model bytes come from: a folder, a ``file://`` URL, or ``s3://`` (an object or a prefix).

One way for both kinds of model data: a single-model container's ``model_data``, fetched once at
start (``gateway.artifacts.model_dir``), and the MultiModel store, one TargetModel at a time on
demand (``gateway.multimodel.model_store``). Local sources are read in place. S3 goes through
fsspec and s3fs with the usual AWS settings (credentials chain, region) and an optional endpoint
URL for S3-compatible stores (MinIO, Ceph ...); without one, botocore's own ``AWS_ENDPOINT_URL_S3``
and ``AWS_ENDPOINT_URL`` apply. Downloads land in temporary files beside their destination and are
removed on failure; errors say whether the source is missing, access was denied or the store did
not answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from gateway.artifacts.errors import (
    ArtifactDenied,
    ArtifactError,
    ArtifactUnavailable,
    MissingArtifact,
)
from gateway.artifacts.unpack import archive_suffix, too_big

LATER_SCHEMES = {"gs", "http", "https"}
S3 = "s3://"


@dataclass(frozen=True)
class Location:
    """A parsed source, before any I/O: a local path, or an S3 bucket and key."""

    url: str
    path: Path | None = None
    bucket: str = ""
    key: str = ""

    @property
    def remote(self) -> str:
        """The fsspec path of an S3 location: ``bucket/key``."""
        return f"{self.bucket}/{self.key}".rstrip("/")

    def child(self, name: str) -> Location:
        """``name`` under this location, as a store's TargetModel is under its prefix."""
        if self.path is not None:
            return Location(str(self.path / name), path=self.path / name)
        key = f"{self.key.strip('/')}/{name}".lstrip("/")
        return Location(f"{S3}{self.bucket}/{key}", bucket=self.bucket, key=key)


def locate(url: str) -> Location:
    """Parse ``url`` (a path, ``file://`` or ``s3://``); other schemes are refused."""
    if url[: len(S3)].lower() == S3:
        # Split by hand: an S3 key may hold '?' or '#', which urlparse would cut off.
        bucket, _, key = url[len(S3) :].partition("/")
        if not bucket:
            raise ArtifactError(url, "an s3:// URL needs a bucket (s3://bucket/key)")
        return Location(url, bucket=bucket, key=key)
    parsed = urlparse(url)
    if parsed.scheme in LATER_SCHEMES:
        raise ArtifactError(
            url,
            f"{parsed.scheme}:// model_data is not supported yet; use a local directory, a "
            ".tar.gz archive, a file:// or an s3:// URL",
        )
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArtifactError(
                url, f"file:// URLs must name a local path (got host {parsed.netloc!r})"
            )
        return Location(url, path=Path(unquote(parsed.path)))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise ArtifactError(url, f"unknown URL scheme {parsed.scheme!r}")
    return Location(url, path=Path(url))


@dataclass(frozen=True)
class Found:
    """A source that exists, and a stamp that changes when its content does."""

    location: Location
    stamp: str
    #: An S3 prefix of files (SageMaker's uncompressed model data): key under it -> size.
    files: dict[str, int] = field(default_factory=dict)

    @property
    def prefix(self) -> bool:
        return bool(self.files)


@contextlib.contextmanager
def scratch_file(folder: Path, name: str) -> Iterator[Path]:
    """A temporary file in ``folder`` for a download of ``name`` (keeping its archive suffix, by
    which a truncated archive is reported as broken), removed afterwards whatever happens."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=archive_suffix(name))
    os.close(fd)
    path = Path(tmp)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


class Fetcher:
    """Reads sources; one S3 filesystem, made on first use and shared by threads (it is safe)."""

    def __init__(self, s3_endpoint_url: str | None = None) -> None:
        self._endpoint_url = s3_endpoint_url
        self._fs: Any = None
        self._fs_lock = threading.Lock()

    def find(self, location: Location) -> Found:
        """Check that ``location`` exists and stamp it: one request for an S3 object."""
        if location.path is not None:
            if not location.path.exists():
                raise MissingArtifact(location.url, "no such file or directory")
            return Found(location, _local_stamp(location.path))
        fs = self._filesystem(location)
        try:
            info = fs.info(location.remote)
            if info.get("type") == "file":
                stamp = {"source": location.url, "etag": info.get("ETag"), "size": info["size"]}
                return Found(location, json.dumps(stamp))
            listing = fs.find(location.remote, detail=True)
        except Exception as exc:
            raise _failed(location, exc) from exc
        base = f"{location.remote}/"
        entries = sorted(
            (name.removeprefix(base), int(entry["size"]), str(entry.get("ETag")))
            for name, entry in listing.items()
            if name.startswith(base) and not name.endswith("/") and entry.get("type") == "file"
        )
        if not entries:
            raise MissingArtifact(location.url, "no objects under this prefix")
        digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
        stamp = {"source": location.url, "files": len(entries), "digest": digest}
        return Found(location, json.dumps(stamp), {key: size for key, size, _ in entries})

    def download(self, location: Location, dest: Path) -> int:
        """Copy the S3 object at ``location`` to the local file ``dest``; its size in bytes."""
        fs = self._filesystem(location)
        try:
            fs.get_file(location.remote, str(dest))
        except Exception as exc:
            if _is_local(exc):
                raise  # the disk, not the store: the caller reports it as such
            raise _failed(location, exc) from exc
        return dest.stat().st_size

    @contextlib.contextmanager
    def fetched(self, found: Found, beside: Path) -> Iterator[Path]:
        """A local path holding the source: itself, or its object downloaded into ``beside``."""
        if found.location.path is not None:
            yield found.location.path
            return
        with scratch_file(beside, found.location.key) as path:
            self.download(found.location, path)
            yield path

    def download_tree(self, found: Found, dest: Path, *, max_bytes: int) -> int:
        """Copy every file of an S3 prefix into the folder ``dest``; their bytes."""
        url = found.location.url
        if sum(found.files.values()) > max_bytes:
            raise too_big(url, max_bytes)
        total = 0
        for key in sorted(found.files):
            parts = PurePosixPath(key).parts
            if not parts or key.startswith("/") or ".." in parts:
                raise ArtifactError(url, f"object {key!r} would land outside the model dir")
            out = dest.joinpath(*parts)
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise ArtifactError(url, f"object {key!r} is under another object") from exc
            total += self.download(found.location.child(key), out)
            if total > max_bytes:  # an object grew since the listing
                raise too_big(url, max_bytes)
        return total

    def _filesystem(self, location: Location) -> Any:
        with self._fs_lock:
            if self._fs is None:
                self._fs = _s3_filesystem(location.url, self._endpoint_url)
            return self._fs


def _s3_filesystem(url: str, endpoint_url: str | None) -> Any:
    try:
        import fsspec

        options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        return fsspec.filesystem("s3", **options)
    except ImportError as exc:
        raise ArtifactError(
            url,
            f"s3:// model_data needs the s3fs package ({exc}); install it with "
            "`pip install tandem[s3]`",
        ) from exc


def _failed(location: Location, exc: Exception) -> ArtifactError:
    """What went wrong, by the kinds s3fs translates botocore's errors into."""
    url = location.url
    if isinstance(exc, FileNotFoundError):
        if _error_code(exc) == "NoSuchBucket":
            return MissingArtifact(url, f"no bucket {location.bucket!r}")
        return MissingArtifact(url, "no such object or prefix")
    if isinstance(exc, PermissionError):
        return ArtifactDenied(url, f"access denied ({exc})")
    if _no_credentials(exc):
        return ArtifactDenied(
            url,
            "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE)",
        )
    return ArtifactUnavailable(url, f"cannot reach the store: {exc}")


def _error_code(exc: BaseException) -> str | None:
    """S3's error code (``NoSuchBucket``, ``NoSuchKey`` ...) from the error s3fs translated."""
    response = getattr(exc.__cause__, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _no_credentials(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import NoCredentialsError
    except ImportError:
        return False
    return isinstance(exc, NoCredentialsError)


def _is_local(exc: BaseException) -> bool:
    """An OS error on a local file (disk full, read-only): s3fs's own errors name no file."""
    return isinstance(exc, OSError) and exc.errno is not None and exc.filename is not None


def _local_stamp(path: Path) -> str:
    """Path, size and mtime of the source (of every file in it, for a dir): changes when it does."""
    entries: list[tuple[str, int, int]] = []
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append(
                    (os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns)
                )
    else:
        st = path.stat()
        entries.append(("", st.st_size, st.st_mtime_ns))
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return json.dumps({"source": str(path.resolve()), "files": len(entries), "digest": digest})
