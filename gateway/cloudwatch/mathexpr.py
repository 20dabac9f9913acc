"""The metric math a dashboard uses: arithmetic and sums over other queries' time series.

Supported: numbers, query ids, ``+ - * /``, parentheses, unary minus, arrays ``[m1, m2]`` and
``METRICS()`` (every metric-stat query), and ``SUM``, ``AVG``, ``MIN``, ``MAX``: over an array
they give a series (per timestamp, over the series that have a value there); over one series,
that series' single figure, as CloudWatch does. Two series combine where both have a value; a
division by zero or any other non-finite result leaves a gap. Anything else is
``InvalidParameterValue`` naming the query.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from statistics import fmean

#: A time series: bucket start (epoch seconds) -> value.
Series = dict[int, float]
Value = float | Series | list[Series]

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "SUM": math.fsum,
    "AVG": fmean,
    "MIN": min,
    "MAX": max,
}


class ExpressionError(ValueError):
    """The expression is not one this gateway evaluates (the message says why)."""


def evaluate(
    text: str, resolve: Callable[[str], Series], metrics: Callable[[], list[Series]]
) -> Series:
    """The series ``text`` stands for; ``resolve(id)`` gives another query's series."""
    parser = _Parser(text, resolve, metrics)
    value = parser.expression()
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected {parser.peek()!r} in the expression")
    if not isinstance(value, dict):
        raise ExpressionError("the expression must give one time series")
    return value


class _Parser:
    def __init__(
        self, text: str, resolve: Callable[[str], Series], metrics: Callable[[], list[Series]]
    ) -> None:
        self.tokens: list[str] = []
        for number, name, other in _TOKEN.findall(text):
            token = number or name or other
            if token.strip():
                self.tokens.append(token)
        self.pos = 0
        self.resolve = resolve
        self.metrics = metrics

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ExpressionError(f"expected {expected or 'more'} in the expression")
        self.pos += 1
        return token

    def expression(self) -> Value:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = _combine(value, self.term(), op)
        return value

    def term(self) -> Value:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            value = _combine(value, self.factor(), op)
        return value

    def factor(self) -> Value:
        if self.peek() == "-":
            self.take()
            return _combine(-1.0, self.factor(), "*")
        return self.atom()

    def atom(self) -> Value:
        token = self.take()
        if token == "(":
            value = self.expression()
            self.take(")")
            return value
        if token == "[":
            items = [self.expression()]
            while self.peek() == ",":
                self.take()
                items.append(self.expression())
            self.take("]")
            return [_series(item) for item in items]
        if token[0].isdigit():
            return float(token)
        if self.peek() == "(":
            return self.call(token.upper())
        return self.resolve(token)

    def call(self, name: str) -> Value:
        self.take("(")
        if name == "METRICS":
            self.take(")")
            return self.metrics()
        if name not in _REDUCE:
            raise ExpressionError(f"the function {name} is not supported")
        argument = self.expression()
        self.take(")")
        reduce = _REDUCE[name]
        if isinstance(argument, list):
            stamps = sorted({ts for series in argument for ts in series})
            return {ts: reduce([s[ts] for s in argument if ts in s]) for ts in stamps}
        if isinstance(argument, dict):
            return reduce(list(argument.values())) if argument else math.nan
        return argument


def _series(value: Value) -> Series:
    if not isinstance(value, dict):
        raise ExpressionError("an array may hold only time series")
    return value


def _apply(left: float, right: float, op: str) -> float:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right if right else math.nan


def _combine(left: Value, right: Value, op: str) -> Value:
    if isinstance(left, list) or isinstance(right, list):
        raise ExpressionError("arithmetic on an array needs a function such as SUM first")
    if isinstance(left, dict) and isinstance(right, dict):
        pairs = {ts: (left[ts], right[ts]) for ts in left if ts in right}
    elif isinstance(left, dict):
        pairs = {ts: (v, float(right)) for ts, v in left.items()}  # type: ignore[arg-type]
    elif isinstance(right, dict):
        pairs = {ts: (float(left), v) for ts, v in right.items()}
    else:
        return _apply(left, right, op)
    out = {ts: _apply(a, b, op) for ts, (a, b) in pairs.items()}
    return {ts: v for ts, v in out.items() if math.isfinite(v)}
