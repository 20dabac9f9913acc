"""Where records come from and outputs go: local paths or any fsspec URL (``file://``, ``s3://``).

An output appears only once its whole file succeeded. Locally it is written to a hidden
``.<name>.out.partial`` beside its final place and renamed (atomic on one file system). Object
stores have no rename, so there the output is spooled to a local temporary file and uploaded in
one go at the end; an object becomes visible only when its upload completes, so a half-written
``.out`` never exists there either.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from gateway.batch.errors import SourceError

OUT_SUFFIX = ".out"
PARTIAL_SUFFIX = ".partial"
REPORT_NAME = "_failures.json"


@dataclass(frozen=True, slots=True)
class InputFile:
    #: Where it lives, as a user would write it (``s3://bucket/key`` or a local path).
    url: str
    #: Path inside its file system, and posix path relative to the input root.
    path: str
    rel: str
    size: int


def _fs(url: str, options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise SourceError(f"cannot open {url!r}: {exc}") from exc


def list_inputs(
    url: str, options: dict[str, Any]
) -> tuple[fsspec.AbstractFileSystem, list[InputFile]]:
    """Every input file under ``url`` (a file, a folder, or a key prefix), sorted by path.

    Hidden files (a name starting with ``.``) are not inputs.
    """
    fs, root = _fs(url, options)
    try:
        if fs.isfile(root):
            size = int(fs.size(root) or 0)
            return fs, [InputFile(_display(fs, root), root, posixpath.basename(root), size)]
        if fs.isdir(root):
            base, entries = root, fs.find(root, detail=True)
        else:  # an object-store prefix such as s3://bucket/data/part-
            base = posixpath.dirname(root)
            entries = {k: v for k, v in fs.find(base, detail=True).items() if k.startswith(root)}
    except OSError as exc:
        raise SourceError(f"cannot list input {url!r}: {exc}") from exc
    files = []
    for path, info in sorted(entries.items()):
        rel = posixpath.relpath(path, base) if base else path
        if info.get("type") != "file" or path.endswith("/"):
            continue
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        files.append(InputFile(_display(fs, path), path, rel, int(info.get("size") or 0)))
    if not files:
        raise SourceError(f"no input files found at {url!r}")
    return fs, files


def _display(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def open_input(fs: fsspec.AbstractFileSystem, item: InputFile) -> BinaryIO:
    try:
        return fs.open(item.path, "rb")
    except OSError as exc:
        raise SourceError(f"cannot read {item.url}: {exc}") from exc


class OutputRoot:
    """The output location: ``<root>/<rel>.out`` per input, plus the failures report."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.fs, self.root = _fs(url, options)
        self.local = isinstance(self.fs, LocalFileSystem)

    def check_apart_from(self, input_url: str, options: dict[str, Any]) -> None:
        """Refuse an output inside the input: a rerun would read its own outputs as inputs."""
        in_fs, in_root = _fs(input_url, options)
        if type(in_fs) is not type(self.fs):
            return
        a, b = in_root.rstrip("/"), self.root.rstrip("/")
        if b == a or b.startswith(a + "/"):
            raise SourceError(f"output {self.url!r} must not be inside input {input_url!r}")

    def path_for(self, rel: str) -> str:
        return posixpath.join(self.root, rel + OUT_SUFFIX)

    def display(self, rel: str) -> str:
        return _display(self.fs, self.path_for(rel))

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path_for(rel)))

    def writer(self, rel: str) -> AtomicWriter:
        final = self.path_for(rel)
        try:
            if self.local:
                return _LocalWriter(final)
            return _SpooledWriter(self.fs, final)
        except OSError as exc:
            raise SourceError(f"cannot write {self.display(rel)}: {exc}") from exc

    @property
    def report_path(self) -> str:
        return posixpath.join(self.root, REPORT_NAME)

    def write_report(self, data: bytes) -> str:
        """Write the failures report whole (temp name + rename where renames exist)."""
        writer = (
            _LocalWriter(self.report_path)
            if self.local
            else _SpooledWriter(self.fs, self.report_path)
        )
        writer.write(data)
        writer.commit()
        return _display(self.fs, self.report_path)

    def remove_report(self) -> None:
        """A run without failures drops a stale report from an earlier run."""
        with contextlib.suppress(FileNotFoundError):
            if self.fs.exists(self.report_path):
                self.fs.rm(self.report_path)


class AtomicWriter:
    """Bytes written in order; visible under the final name only after ``commit``."""

    final: str
    _file: IO[bytes]

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class _LocalWriter(AtomicWriter):
    def __init__(self, final: str) -> None:
        self.final = final
        folder, name = os.path.split(final)
        os.makedirs(folder or ".", exist_ok=True)
        # A fixed name: a run killed half-way leaves one partial, which the rerun overwrites.
        self.temp = os.path.join(folder, f".{name}{PARTIAL_SUFFIX}")
        self._file = open(self.temp, "wb")  # noqa: SIM115 - closed in commit/discard

    def commit(self) -> None:
        self._file.close()
        os.replace(self.temp, self.final)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


class _SpooledWriter(AtomicWriter):
    def __init__(self, fs: fsspec.AbstractFileSystem, final: str) -> None:
        self.fs = fs
        self.final = final
        self._file = tempfile.NamedTemporaryFile(prefix="tandem-batch-", delete=False)  # noqa: SIM115

    def commit(self) -> None:
        self._file.close()
        try:
            self.fs.put_file(self._file.name, self.final)
        except OSError as exc:
            raise SourceError(f"cannot upload {_display(self.fs, self.final)}: {exc}") from exc
        finally:
            os.unlink(self._file.name)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file.name)
