"""The model store: where a MultiModel container's ``model_data`` prefix points.

A local folder (or ``file://``) is read in place; ``s3://bucket/prefix/`` goes through fsspec and
s3fs with the usual AWS settings (credentials chain, region) and an optional endpoint URL for
S3-compatible stores. Nothing is listed or cached here: every fetch asks the store, so an
artifact copied under the prefix is servable at once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


class StoreError(Exception):
    """The store could not deliver an artifact; the message is safe to show a client."""


class MissingModel(StoreError):
    """No artifact at ``<prefix>/<target>``."""


class BadArtifact(StoreError):
    """The artifact exists but is not a model that can be unpacked safely."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, throttling): worth a retry later."""


class ModelStore:
    """Read-only access to one prefix; ``fetch`` is blocking (call it from a worker thread)."""

    def __init__(self, prefix: str, *, s3_endpoint_url: str | None = None) -> None:
        parsed = urlparse(prefix)
        self.prefix = prefix
        self._endpoint_url = s3_endpoint_url
        self._fs: Any = None
        self._fs_lock = threading.Lock()
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise StoreError(f"{prefix}: an s3:// prefix needs a bucket (s3://bucket/prefix/)")
            self.root: Path | None = None
            self._remote = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        elif parsed.scheme in ("", "file"):
            path = unquote(parsed.path) if parsed.scheme == "file" else prefix
            self.root = Path(path).resolve()
            self._remote = ""
        else:
            raise StoreError(f"{prefix}: unsupported model store; use a folder, file:// or s3://")

    @property
    def local(self) -> bool:
        return self.root is not None

    def location(self, target: str) -> str:
        """Where ``target`` lives, for messages (a URL or path, never credentials)."""
        if self.root is not None:
            return str(self.root / target)
        return f"s3://{self._remote}/{target}"

    def local_path(self, target: str) -> Path:
        """The artifact of a local store; links may not lead out of the store's folder."""
        assert self.root is not None
        path = self.root / target
        try:
            real = path.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise MissingModel(f"no model at {self.location(target)}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.location(target)}: {exc.strerror}") from exc
        if not real.is_relative_to(self.root):
            raise MissingModel(f"no model at {self.location(target)} inside the store")
        return real

    def download(self, target: str, dest: Path) -> int:
        """Copy the remote object ``target`` to the local file ``dest``; its size in bytes."""
        fs = self._filesystem()
        key = f"{self._remote}/{target}"
        try:
            fs.get_file(key, str(dest))
        except FileNotFoundError as exc:
            raise MissingModel(f"no model at {self.location(target)}") from exc
        except IsADirectoryError as exc:
            raise StoreError(f"{self.location(target)} is a folder; use a .tar.gz object") from exc
        except PermissionError as exc:
            raise StoreError(f"access denied to {self.location(target)}") from exc
        except Exception as exc:  # botocore/aiohttp errors s3fs does not translate
            raise StoreUnavailable(f"cannot download {self.location(target)}: {exc}") from exc
        return dest.stat().st_size

    def _filesystem(self) -> Any:
        with self._fs_lock:
            if self._fs is None:
                self._fs = _s3_filesystem(self._endpoint_url)
            return self._fs


def _s3_filesystem(endpoint_url: str | None) -> Any:
    try:
        import fsspec

        options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        return fsspec.filesystem("s3", **options)
    except ImportError as exc:
        raise StoreError(
            f"s3:// model_data needs the s3fs package ({exc}); install it with "
            "`pip install tandem[s3]`"
        ) from exc
