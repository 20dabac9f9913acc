"""Turn a local model dir or archive into a model dir, defensively and atomically.

Archives are extracted with no member outside the target, no links or devices, and a size cap
against bombs; dirs are copied (never linked, so editing a served model cannot change what a
running container sees) with no link leading out of them. Everything is written into a temporary
sibling of the target that is renamed into place, so a failure leaves no half-written model dir.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TypeVar, cast

from gateway.artifacts.errors import ArtifactError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
GZIP_MAGIC = b"\x1f\x8b"
#: Bytes per read when a member is copied out of a gzip archive.
COPY_BUFFER = 256 * 1024
T = TypeVar("T")


def unpack(path: Path, target: Path, *, label: str, max_bytes: int) -> int:
    """Copy a model dir or extract an archive at ``path`` into ``target`` atomically; its bytes.

    ``label`` names the source in errors (a URL or a TargetModel, never a temporary path).
    """
    if path.is_dir():
        return replace_dir(target, lambda tmp: _copy_dir(path, tmp, label, max_bytes))
    if path.is_file() and _is_archive(path):
        return replace_dir(target, lambda tmp: _extract(path, tmp, label, max_bytes))
    raise ArtifactError(label, "model_data must be a directory or a .tar.gz archive")


def archive_suffix(name: str) -> str:
    """The archive suffix of ``name`` ("" if none): a downloaded copy keeps it."""
    return next((s for s in ARCHIVE_SUFFIXES if name.endswith(s)), "")


def too_big(label: str, max_bytes: int, what: str = "larger than") -> ArtifactError:
    return ArtifactError(
        label, f"{what} the {max_bytes}-byte model size cap (TANDEM_MAX_MODEL_BYTES)"
    )


def replace_dir(target: Path, fill: Callable[[Path], T]) -> T:
    """Fill a temporary sibling of ``target``, then swap it in; on any failure remove it."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    old: Path | None = None
    try:
        result = fill(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return result


def _is_archive(path: Path) -> bool:
    """By name first, so that a truncated ``.tar.gz`` is reported as broken, not as no archive."""
    if archive_suffix(path.name):
        return True
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False


def _copy_dir(src: Path, dst: Path, source: str, max_bytes: int) -> int:
    """Copy a local model dir; links inside it are followed, links out of it refused."""
    total = 0
    root_real = src.resolve()
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root_real):
                rel = entry.relative_to(src)
                raise ArtifactError(source, f"{rel} is a link pointing outside the model dir")
        for name in files:
            total += (Path(root) / name).stat().st_size
            if total > max_bytes:
                raise too_big(source, max_bytes)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return total


@contextlib.contextmanager
def _open_archive(archive: Path, max_trailing: int) -> Iterator[tarfile.TarFile]:
    """Read a gzip archive to its end: tarfile stops at the end-of-archive blocks, before the
    gzip trailer, so a damaged stream would otherwise unpack without its checksum being checked.
    What follows those blocks is padding; more than ``max_trailing`` bytes of it is refused.
    """
    with open(archive, "rb") as head:
        gzipped = head.read(2) == GZIP_MAGIC
    if not gzipped:
        with tarfile.open(archive, "r:*") as tar:
            yield tar
        return
    # Members are copied out in 16 KiB reads by default, each a trip through the gzip reader's
    # Python code: 256 KiB cut a 10 MB model's unpack by about a sixth.
    with (
        _gunzip(archive) as stream,
        tarfile.TarFile(fileobj=stream, mode="r", copybufsize=COPY_BUFFER) as tar,
    ):
        yield tar
        trailing = 0
        while chunk := stream.read(1 << 20):
            trailing += len(chunk)
            if trailing > max_trailing:
                raise tarfile.ReadError(f"more than {max_trailing} bytes after the archive's end")


def _gunzip(archive: Path) -> gzip.GzipFile:
    """ISA-L (``isal``) inflates about twice as fast as zlib: most of a cold model's unpack."""
    try:
        from isal import igzip
    except ImportError:
        return gzip.open(archive, "rb")
    return igzip.open(archive, "rb")


def _inflate_errors() -> tuple[type[Exception], ...]:
    try:
        from isal import isal_zlib
    except ImportError:
        return (zlib.error,)
    return (zlib.error, cast("type[Exception]", isal_zlib.error))  # its stub calls it an instance


def _extract(archive: Path, dst: Path, source: str, max_bytes: int) -> int:
    total = 0
    unreadable: tuple[type[Exception], ...] = (
        tarfile.TarError,
        OSError,
        EOFError,
        *_inflate_errors(),
    )
    try:
        with _open_archive(archive, max_trailing=max_bytes) as tar:
            for member in tar:
                name = member.name
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    raise ArtifactError(source, f"member {name!r} would land outside the model dir")
                if member.issym() or member.islnk():
                    raise ArtifactError(source, f"member {name!r} is a link; links are not allowed")
                if not (member.isfile() or member.isdir()):
                    raise ArtifactError(
                        source,
                        f"member {name!r} is a device or special file; only files and "
                        "directories are allowed",
                    )
                total += member.size
                if total > max_bytes:
                    raise too_big(source, max_bytes, "unpacks to more than")
                tar.extract(member, dst, filter="data")
    except ArtifactError:
        raise
    except unreadable as exc:
        raise ArtifactError(source, f"cannot unpack: {exc}") from exc
    return total
