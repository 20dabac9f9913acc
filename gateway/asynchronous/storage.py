"""Inputs read and answers written, on S3 (through fsspec and s3fs) or in local folders.

An answer appears whole or not at all: a local one is written to a hidden partial file beside its
final name, made durable and renamed over it (at once, or with the others of its group commit:
``publish``); an S3 one is a single put (multipart for large ones,
which S3 also shows only once complete). The partial file's name is fixed per answer, so a retry
after a crash overwrites the one a killed worker left. Blocking calls: run them in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gateway.atomic import publish, write_atomic, write_partial

S3 = "s3://"


class StorageError(Exception):
    """An input that cannot be read or an answer that cannot be written; the text says which."""


def is_s3(url: str) -> bool:
    return url[: len(S3)].lower() == S3


def local_path(url: str) -> Path:
    """The path of a ``file://`` URL or a plain path."""
    if url[:5].lower() != "file:":  # a plain path: no URL parse per answer
        return Path(url)
    return Path(unquote(urlparse(url).path))


def local_name(url: str) -> str:
    """``local_path``'s text, without building a ``Path`` (once per answer written)."""
    if url[:5].lower() != "file:":
        return url
    return unquote(urlparse(url).path)


def join(base: str, *parts: str) -> str:
    """``parts`` under ``base``, in ``base``'s own form (an s3:// or file:// URL, or a path)."""
    clean = [p.strip("/") for p in parts if p and p.strip("/")]
    if "://" in base:
        return "/".join([base.rstrip("/"), *clean])
    return str(Path(base, *clean))


class Storage:
    """Reads and writes locations; one S3 filesystem made on first use, shared by threads."""

    def __init__(self, s3_endpoint_url: str | None = None) -> None:
        self._endpoint_url = s3_endpoint_url
        self._fs: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._fs is None:
                try:
                    import fsspec
                except ImportError as exc:  # pragma: no cover - fsspec is a dependency
                    raise StorageError(f"s3:// needs fsspec and s3fs ({exc})") from exc
                options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
                if self._endpoint_url:
                    options["endpoint_url"] = self._endpoint_url
                try:
                    self._fs = fsspec.filesystem("s3", **options)
                except ImportError as exc:
                    raise StorageError(
                        f"s3:// needs the s3fs package ({exc}); install it with "
                        "`pip install tandem[s3]`"
                    ) from exc
            return self._fs

    def size(self, url: str) -> int:
        """The size of the object or file at ``url``; StorageError when there is none."""
        try:
            if is_s3(url):
                info = self._s3().info(url[len(S3) :])
                if info.get("type") == "directory":
                    raise StorageError(f"{url} is a prefix, not an object")
                return int(info["size"])
            path = local_path(url)
            if path.is_dir():
                raise StorageError(f"{url} is a folder, not a file")
            return path.stat().st_size
        except FileNotFoundError:
            raise StorageError(f"{url}: no such object or file") from None
        except PermissionError as exc:
            raise StorageError(f"{url}: access denied ({exc})") from None
        except StorageError:
            raise
        except Exception as exc:  # s3fs and botocore raise many kinds; the text is the news
            raise StorageError(f"{url}: cannot be read: {exc}") from exc

    def read(self, url: str, limit: int) -> bytes:
        """The whole input, refused when over ``limit`` bytes."""
        size = self.size(url)
        if size > limit:
            raise StorageError(
                f"the input {url} is {size:,} bytes, over the limit of {limit:,} bytes "
                "(TANDEM_ASYNC_MAX_BYTES)"
            )
        try:
            if is_s3(url):
                data: bytes = self._s3().cat_file(url[len(S3) :])
            else:
                data = local_path(url).read_bytes()
        except Exception as exc:
            raise StorageError(f"{url}: cannot be read: {exc}") from exc
        if len(data) > limit:  # it grew since
            raise StorageError(f"the input {url} is over the limit of {limit:,} bytes")
        return data

    def exists(self, url: str) -> bool:
        try:
            if is_s3(url):
                return bool(self._s3().exists(url[len(S3) :]))
            return local_path(url).is_file()
        except Exception as exc:
            raise StorageError(f"{url}: cannot be checked: {exc}") from exc

    def write(self, url: str, data: bytes, *, later: bool = False) -> None:
        """``data`` at ``url``, all of it or nothing, durable. ``later``: a local file is only
        written to its partial file, and appears (durable) at ``publish``: the group commit
        publishes all the objects it records at once, for one flush instead of one each. An
        S3 put is whole and durable when it returns either way."""
        try:
            if is_s3(url):
                self._s3().pipe_file(url[len(S3) :], data)
            elif later:
                write_partial(local_name(url), data, sync=False)
            else:
                write_atomic(local_path(url), data, sync_folder=True)
        except Exception as exc:
            raise StorageError(f"{url}: cannot be written: {exc}") from exc

    def publish(self, urls: Iterable[str]) -> dict[str, StorageError]:
        """The local objects written ``later`` made durable and put in place (see
        ``gateway.atomic.publish``; ones already in place are left alone); those that could
        not be, with why."""
        local = {local_name(u): u for u in urls if not is_s3(u)}
        failed = publish(local)
        return {
            local[p]: StorageError(f"{local[p]}: cannot be written: {e}") for p, e in failed.items()
        }
