"""TargetModel: the client's relative path under the prefix, and the safe name the container sees.

The container's name is a sanitized, readable form of the target plus a hash of it: two targets
never share a name, no name is a path trick, and the same name serves as the disk cache folder.
"""

from __future__ import annotations

import hashlib
import re

from gateway.errors import InvalidRequest
from pipelines.spec import MAX_TARGET_MODEL, check_target_model

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_READABLE = 48


def validate_target(target: str) -> str:
    """``target`` when it stays under the prefix; else the InvalidRequest a client sees."""
    try:
        return check_target_model(target)
    except ValueError as exc:
        shown = target[:100].encode("unicode_escape").decode("ascii")
        raise InvalidRequest(
            f"1 validation error detected: Value '{shown}' at 'targetModel' failed to satisfy "
            f"constraint: TargetModel {exc} (a relative path of at most {MAX_TARGET_MODEL} "
            "characters under the endpoint's model_data prefix)."
        ) from exc


def container_name(target: str) -> str:
    """``Houston_TX.tar.gz`` -> ``Houston_TX.tar.gz-1a2b3c4d5e6f``: unique, safe, recognisable."""
    digest = hashlib.sha256(target.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    readable = _UNSAFE.sub("_", target.rsplit("/", 1)[-1]).lstrip("._-")[:_READABLE]
    return f"{readable}-{digest}" if readable else f"m-{digest}"
