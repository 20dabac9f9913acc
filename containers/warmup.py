"""A model's warm-up: sample requests run at load, before the model takes traffic.

As Triton's ``model_warmup``: a framework's first call may trace a graph, allocate lazily or fill
caches, and without a warm-up the first customer pays for it. A model opts in with a
``warmup.json`` in its folder (docs/contract.md#warm-up)::

    {"ContentType": "text/csv", "Accept": "application/json", "Body": "0.5,1.2,3\\n", "Count": 2}

``BodyFile`` (a file of the model's folder) may stand for ``Body``. Each sample runs through the
model's whole handler (``input_fn``, ``predict_fn``, ``output_fn`` or ``transform_fn``) in the
load's thread, so the load answers only once the model is warm; a failing warm-up fails the load.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from containers.errors import ContainerError, ModelLoadError
from containers.handler import ModelHandler

log = logging.getLogger(__name__)
WARMUP_FILE = "warmup.json"
MAX_COUNT = 100
MAX_BODY = 6 * 1024 * 1024


def warm_up(handler: ModelHandler, model: Any, model_dir: Path) -> int:
    """Run the samples of ``model_dir/warmup.json`` (none: nothing); how many ran."""
    spec_path = model_dir / WARMUP_FILE
    if not spec_path.is_file():
        return 0
    started = time.perf_counter()
    try:
        body, content_type, accept, count = _read(spec_path, model_dir)
        media = handler.resolve_content_type(content_type)
        chosen = handler.resolve_accept(accept)
        for _ in range(count):
            handler.invoke(model, body, media, chosen, handler.context())
    except ContainerError as exc:
        raise ModelLoadError(f"warm-up of model {handler.name!r} failed: {exc.message}") from exc
    except Exception as exc:
        raise ModelLoadError(
            f"warm-up of model {handler.name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    log.info(
        "warmed up %s with %d sample(s) in %.1f ms",
        handler.name,
        count,
        (time.perf_counter() - started) * 1e3,
    )
    return count


def _read(spec_path: Path, model_dir: Path) -> tuple[bytes, str | None, str | None, int]:
    """The sample's body, content type, accept and count; ``ModelLoadError`` when malformed."""
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{WARMUP_FILE} is not a readable JSON object: {exc}") from exc
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{WARMUP_FILE} must be a JSON object")
    count = spec.get("Count", 1)
    if not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ModelLoadError(f"{WARMUP_FILE}: Count must be an integer from 1 to {MAX_COUNT}")
    content_type, accept = spec.get("ContentType"), spec.get("Accept")
    for key, value in (("ContentType", content_type), ("Accept", accept)):
        if value is not None and not isinstance(value, str):
            raise ModelLoadError(f"{WARMUP_FILE}: {key} must be a string")
    if isinstance(spec.get("Body"), str):
        body = spec["Body"].encode()
    elif isinstance(spec.get("BodyFile"), str):
        body = _body_file(model_dir, spec["BodyFile"])
    else:
        raise ModelLoadError(f"{WARMUP_FILE} needs a Body (a string) or a BodyFile")
    return body, content_type, accept, count


def _body_file(model_dir: Path, name: str) -> bytes:
    base = model_dir.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise ModelLoadError(f"{WARMUP_FILE}: BodyFile {name!r} is not a file of the model folder")
    if path.stat().st_size > MAX_BODY:
        raise ModelLoadError(f"{WARMUP_FILE}: BodyFile {name!r} is over {MAX_BODY} bytes")
    return path.read_bytes()
