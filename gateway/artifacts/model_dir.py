"""A single-model container's model dir, made from its ``model_data`` at start.

The source is fetched (``gateway.artifacts.fetch``) and unpacked (``gateway.artifacts.unpack``)
into the target atomically. A stamp file beside the target skips the work when the source is
unchanged: path, sizes and mtimes for a local source, ETag and size of an S3 object (of every
object, for a prefix). The stamp is taken before the download, so a source that changes meanwhile
is fetched again at the next start rather than skipped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gateway.artifacts.fetch import Fetcher, locate
from gateway.artifacts.unpack import replace_dir, unpack

STAMP_SUFFIX = ".stamp"


def prepare_model_dir(
    source: str | None, target: Path, *, max_bytes: int, s3_endpoint_url: str | None = None
) -> Path:
    """Make ``target`` hold the model from ``source``; an absent source gives an empty dir.

    ``s3_endpoint_url`` is the gateway's setting (``TANDEM_S3_ENDPOINT_URL``). The deploy-time
    writers (``tandem compose``, ``tandem k8s --unpack-models``) pass none: they fetch ``s3://``
    model data too, with botocore's own settings (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``,
    the credentials chain).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        target.mkdir(exist_ok=True)
        return target
    fetcher = Fetcher(s3_endpoint_url)
    found = fetcher.find(locate(source))
    stamp_file = target.with_name(target.name + STAMP_SUFFIX)
    if target.is_dir() and _read(stamp_file) == found.stamp:
        return target
    if found.prefix:
        replace_dir(target, lambda tmp: fetcher.download_tree(found, tmp, max_bytes=max_bytes))
    else:
        with fetcher.fetched(found, beside=target.parent) as path:
            unpack(path, target, label=source, max_bytes=max_bytes)
    _write_atomic(stamp_file, found.stamp)
    return target


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
