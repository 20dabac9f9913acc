"""The model store: where a MultiModel container's ``model_data`` prefix points.

A local folder (or ``file://``) is read in place; ``s3://bucket/prefix/`` is read through the
shared fetch (``gateway.artifacts.fetch``: fsspec and s3fs, the usual AWS settings and an optional
endpoint URL), the same code a single-model container's ``model_data`` goes through. Nothing is
listed or cached here: every fetch asks the store, so an artifact copied under the prefix is
servable at once.
"""

from __future__ import annotations

from pathlib import Path

from gateway.artifacts import (
    ArtifactError,
    ArtifactUnavailable,
    Fetcher,
    MissingArtifact,
    locate,
)
from pipelines.errors import TandemError


class StoreError(TandemError):
    """The store could not deliver an artifact; the message is safe to show a client."""


class MissingModel(StoreError):
    """No artifact at ``<prefix>/<target>``."""


class BadArtifact(StoreError):
    """The artifact exists but is not a model that can be unpacked safely."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, throttling): worth a retry later."""


class ModelStore:
    """Read-only access to one prefix; ``download`` is blocking (call it from a worker thread)."""

    def __init__(self, prefix: str, *, s3_endpoint_url: str | None = None) -> None:
        self.prefix = prefix
        try:
            self._location = locate(prefix)
        except ArtifactError as exc:
            raise StoreError(f"{prefix}: unsupported model store ({exc.reason})") from exc
        self.root = None if self._location.path is None else self._location.path.resolve()
        self._fetcher = Fetcher(s3_endpoint_url)

    @property
    def local(self) -> bool:
        return self.root is not None

    def location(self, target: str) -> str:
        """Where ``target`` lives, for messages (a URL or path, never credentials)."""
        if self.root is not None:
            return str(self.root / target)
        return self._location.child(target).url

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
        where = self.location(target)
        try:
            return self._fetcher.download(self._location.child(target), dest)
        except MissingArtifact as exc:
            raise MissingModel(f"no model at {where}") from exc
        except ArtifactUnavailable as exc:
            raise StoreUnavailable(f"cannot download {where}: {exc.reason}") from exc
        except ArtifactError as exc:  # access denied, no credentials, no s3fs
            raise StoreError(f"cannot download {where}: {exc.reason}") from exc
