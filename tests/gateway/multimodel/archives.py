"""Archives for the model store: good ones, and the kinds an attacker would upload."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def write_tar(path: Path, files: dict[str, bytes], *, mode: str = "w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def escaping(path: Path) -> Path:
    """A member that climbs out of the folder it is unpacked into."""
    return write_tar(path, {"model.joblib": b"x", "../../escaped.txt": b"owned"})


def absolute(path: Path) -> Path:
    return write_tar(path, {"/tmp/tandem-absolute.txt": b"owned"})


def with_link(path: Path, *, hard: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    return path


def with_device(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("dev-null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tar.addfile(info)
    return path


def bomb(path: Path, size: int) -> Path:
    """Compresses to almost nothing, unpacks to ``size`` bytes."""
    return write_tar(path, {"model.joblib": b"\0" * size})


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1f\x8b\x08\x00 this is not really gzip" * 10)
    return path
