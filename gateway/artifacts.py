"""Model artifacts: turn a spec's ``model_data`` into a container's model dir.

Sources are copied, never linked, so that editing or rebuilding a model while it is served cannot
change what a running container sees; a stamp file skips the copy when the source is unchanged.
Archives are extracted defensively (no member outside the target, no links or devices, a size cap
against bombs) into a temporary sibling that is renamed into place, so a failed unpack leaves no
half-written model dir.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import cast
from urllib.parse import unquote, urlparse

STAMP_SUFFIX = ".stamp"
LATER_SCHEMES = {"s3", "gs", "http", "https"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
GZIP_MAGIC = b"\x1f\x8b"


class ArtifactError(Exception):
    """``model_data`` cannot become a model dir; the message names the source and the reason."""


def resolve_source(url: str) -> Path:
    """A local path for ``url`` (a path or a ``file://`` URL); remote schemes are refused."""
    parsed = urlparse(url)
    if parsed.scheme in LATER_SCHEMES:
        raise ArtifactError(
            f"{url}: {parsed.scheme}:// model_data is not supported yet; "
            "use a local directory, a .tar.gz archive or a file:// URL"
        )
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArtifactError(
                f"{url}: file:// URLs must name a local path (got host {parsed.netloc!r})"
            )
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise ArtifactError(f"{url}: unknown URL scheme {parsed.scheme!r}")
    return Path(url)


def prepare_model_dir(source: str | None, target: Path, *, max_bytes: int) -> Path:
    """Make ``target`` hold the model from ``source``; an absent source gives an empty dir."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        target.mkdir(exist_ok=True)
        return target
    path = resolve_source(source)
    if not path.exists():
        raise ArtifactError(f"{source}: no such file or directory")
    stamp = _stamp(path)
    stamp_file = target.with_name(target.name + STAMP_SUFFIX)
    if target.is_dir() and _read(stamp_file) == stamp:
        return target
    unpack(path, target, label=source, max_bytes=max_bytes)
    _write_atomic(stamp_file, stamp)
    return target


def unpack(path: Path, target: Path, *, label: str, max_bytes: int) -> int:
    """Copy a model dir or extract an archive at ``path`` into ``target`` atomically; its bytes.

    ``label`` names the source in errors (a URL or a TargetModel, never a temporary path).
    """
    sizes: list[int] = []
    if path.is_dir():
        _replace(target, lambda tmp: sizes.append(_copy_dir(path, tmp, label, max_bytes)))
    elif path.is_file() and _is_archive(path):
        _replace(target, lambda tmp: sizes.append(_extract(path, tmp, label, max_bytes)))
    else:
        raise ArtifactError(f"{label}: model_data must be a directory or a .tar.gz archive")
    return sizes[0]


def _is_archive(path: Path) -> bool:
    """By name first, so that a truncated ``.tar.gz`` is reported as broken, not as no archive."""
    if path.name.endswith(ARCHIVE_SUFFIXES):
        return True
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False


def _stamp(path: Path) -> str:
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


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace(target: Path, fill: Callable[[Path], None]) -> None:
    """Fill a temporary sibling of ``target``, then swap it in; on any failure remove it."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    old: Path | None = None
    try:
        fill(tmp)
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


def _copy_dir(src: Path, dst: Path, source: str, max_bytes: int) -> int:
    """Copy a local model dir; links inside it are followed, links out of it refused."""
    total = 0
    root_real = src.resolve()
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root_real):
                rel = entry.relative_to(src)
                raise ArtifactError(f"{source}: {rel} is a link pointing outside the model dir")
        for name in files:
            total += (Path(root) / name).stat().st_size
            if total > max_bytes:
                raise ArtifactError(
                    f"{source}: larger than the {max_bytes}-byte model size cap "
                    "(TANDEM_MAX_MODEL_BYTES)"
                )
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
    with _gunzip(archive) as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
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
                    raise ArtifactError(
                        f"{source}: member {name!r} would land outside the model dir"
                    )
                if member.issym() or member.islnk():
                    raise ArtifactError(
                        f"{source}: member {name!r} is a link; links are not allowed"
                    )
                if not (member.isfile() or member.isdir()):
                    raise ArtifactError(
                        f"{source}: member {name!r} is a device or special file; only files and "
                        "directories are allowed"
                    )
                total += member.size
                if total > max_bytes:
                    raise ArtifactError(
                        f"{source}: unpacks to more than the {max_bytes}-byte model size cap "
                        "(TANDEM_MAX_MODEL_BYTES)"
                    )
                tar.extract(member, dst, filter="data")
    except ArtifactError:
        raise
    except unreadable as exc:
        raise ArtifactError(f"{source}: cannot unpack: {exc}") from exc
    return total
