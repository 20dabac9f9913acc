"""The control plane's JSON reader: what AWS's JSON 1.1 would accept, else SerializationException.

Python's ``json`` module is more lenient than AWS: it takes ``NaN`` and ``Infinity``, reads
``1e400`` as infinity, decodes UTF-16 and UTF-32 bodies, keeps lone surrogates (``"\\ud800"``)
that no database or environment can hold, and nests until the interpreter's stack runs out
(``RecursionError``). Each of those is refused here, before any operation sees the input, with a
message that says what was wrong; nothing past this point has to think about them again.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.errors import SerializationFailure

#: Deepest nesting taken: SageMaker's deepest input shape is about a dozen levels.
MAX_DEPTH = 64


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body); ``SerializationFailure`` otherwise."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")  # AWS's JSON protocols are UTF-8; json.loads would guess
    except UnicodeDecodeError as exc:
        raise SerializationFailure(f"The request body is not valid UTF-8: {exc}") from None
    try:
        params = json.loads(text, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise SerializationFailure(
            f"The request body is nested too deeply (more than {MAX_DEPTH} levels)."
        ) from None
    except ValueError as exc:
        raise SerializationFailure(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise SerializationFailure(
            f"The request body must be a JSON object, not {type(params).__name__}."
        )
    _check_tree(params)
    return params


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number: numbers must be finite")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range: numbers must be finite")
    return value


def _check_tree(root: dict[str, Any]) -> None:
    """Depth and text, walked without recursion (the tree may be as deep as json allows)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SerializationFailure(
                f"The request body is nested too deeply (more than {MAX_DEPTH} levels)."
            )
        if isinstance(node, dict):
            for key, value in node.items():
                _text(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _text(node)


def _text(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationFailure(
            f"The request body holds a string that is not valid Unicode (a lone surrogate "
            f"escape such as \\ud800): {value[:40]!r}"
        ) from None
