"""Writing model artifacts the way SageMaker ships them: one ``model.tar.gz`` per container.

Archives are written to a temporary name and renamed into place, so a build that fails or is
interrupted never leaves a half-written artifact that a later ``build-if-missing`` would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

STAMP = ".build-stamp"


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Fixed owner and time: the archive depends on the model files only.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def write_tarball(src: Path, dest: Path) -> Path:
    """Pack the contents of ``src`` (not the folder itself) into ``dest`` atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w") as tar,
        ):
            for path in sorted(src.rglob("*")):
                tar.add(
                    path, arcname=str(path.relative_to(src)), recursive=False, filter=_normalise
                )
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; containers may run as another user
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest


@contextmanager
def staging() -> Iterator[Path]:
    """A scratch folder for one artifact's files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tandem-build-") as tmp:
        yield Path(tmp)


def source_digest(files: Sequence[Path]) -> str:
    """Fingerprint of the code that builds an example: a changed recipe means a rebuild."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def is_current(folder: Path, artifacts: Sequence[str], digest: str) -> bool:
    stamp = folder / STAMP
    return (
        all((folder / name).is_file() for name in artifacts)
        and stamp.is_file()
        and stamp.read_text(encoding="utf-8").strip() == digest
    )


def write_stamp(folder: Path, digest: str) -> None:
    tmp = folder / f"{STAMP}.tmp"
    tmp.write_text(digest + "\n", encoding="utf-8")
    os.replace(tmp, folder / STAMP)
