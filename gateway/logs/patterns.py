"""CloudWatch Logs' filter patterns for unstructured lines: terms, quoted phrases, ``?`` and ``-``.

``ERROR timeout`` keeps lines holding both terms; ``"model_fn failed"`` a phrase; ``?ERROR
?WARN`` lines holding either; ``-DEBUG`` drops lines holding it; matching is case-sensitive, as
the service's. JSON (``{ $.x = 1 }``) and space-delimited (``[a, b]``) patterns select fields of
structured events, which the containers' lines are not: they are refused, naming the member.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.logs.checks import InvalidParameter

_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def matcher(pattern: str) -> Callable[[str], bool]:
    """A test for one message: does ``pattern`` keep it?"""
    text = pattern.strip()
    if text[:1] in ("{", "["):
        raise InvalidParameter(
            f"filterPattern {pattern[:100]!r}: JSON and space-delimited patterns are not "
            "supported (the containers' logs are plain lines); use terms, quoted phrases, "
            "?term and -term."
        )
    required: list[str] = []
    anyof: list[str] = []
    excluded: list[str] = []
    for sign, quoted, bare in _TERM.findall(text):
        term = quoted.replace('\\"', '"') if quoted else bare
        if not term:
            continue
        {"?": anyof, "-": excluded}.get(sign, required).append(term)

    def keep(message: str) -> bool:
        return (
            all(t in message for t in required)
            and (not anyof or any(t in message for t in anyof))
            and not any(t in message for t in excluded)
        )

    return keep
