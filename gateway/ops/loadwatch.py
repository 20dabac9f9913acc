"""Watching a load test: its timeline, a live view while it runs, a chart of it afterwards.

The timeline cuts a run into one-second steps: requests answered, errors, req/s, p50 and p99
of the answers that came in each step, and the instances each production variant had serving
then (polled from the gateway's ``GET /endpoints/{name}``). ``chart_html`` draws it as one
self-contained HTML page, inline SVG and no script, the picture of SageMaker's CloudWatch graph
of a scaling endpoint: instances, req/s and latency over time. The series are also in the page,
as JSON in a ``<script type="application/json" id="series">`` element, for a program to read.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.loadtest import LoadResult, Sample, percentile

#: Seconds per step of the timeline and the live view's window.
STEP = 1.0
#: Instances of a variant the live view and the chart call "-" when never polled.
UNKNOWN = -1


@dataclass
class Timeline:
    """A run in steps of ``step`` seconds (by when each answer came)."""

    step: float
    start: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    #: Per production variant: its instances serving at the end of each step (UNKNOWN: none
    #: polled yet).
    instances: dict[str, list[int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "step_s": self.step,
            "start_s": self.start,
            "requests": self.requests,
            "errors": self.errors,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "instances": self.instances,
        }


def timeline(result: LoadResult, step: float = STEP) -> Timeline:
    """``result`` in steps: every sample counted once, in the step its answer came."""
    ended = result.elapsed
    for sample in result.samples:
        ended = max(ended, sample.at + sample.latency)
    steps = max(int(ended // step) + 1, 1)
    buckets: list[list[Sample]] = [[] for _ in range(steps)]
    for sample in result.samples:
        buckets[min(int((sample.at + sample.latency) // step), steps - 1)].append(sample)
    out = Timeline(step)
    for index, bucket in enumerate(buckets):
        latencies = sorted(s.latency for s in bucket)
        out.start.append(round(index * step, 3))
        out.requests.append(len(bucket))
        out.errors.append(sum(not s.ok for s in bucket))
        out.rps.append(round(len(bucket) / step, 3))
        out.p50_ms.append(round(percentile(latencies, 50) * 1000, 3))
        out.p99_ms.append(round(percentile(latencies, 99) * 1000, 3))
    variants = sorted({v for _, counts in result.instances for v in counts})
    for variant in variants:
        series, last, polls = [], UNKNOWN, iter(result.instances)
        pending = next(polls, None)
        for index in range(steps):
            while pending is not None and pending[0] <= (index + 1) * step:
                last = pending[1].get(variant, last)
                pending = next(polls, None)
            series.append(last)
        out.instances[variant] = series
    return out


class LiveTable:
    """The live view: per variant, req/s and p50/p99 over the last ``window`` seconds, errors
    so far and the instances serving now. ``update`` is a ``gateway.ops.loadtest.Watch``."""

    def __init__(self, title: str, window: float = 5.0) -> None:
        self.title = title
        self.window = window
        self._now = 0.0
        self._samples: list[Sample] = []
        self._instances: dict[str, int] = {}

    def update(self, now: float, samples: list[Sample], instances: dict[str, int] | None) -> None:
        self._now, self._samples = now, samples
        if instances is not None:
            self._instances = instances

    def __rich__(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"{escape(self.title)} · {self._now:.0f} s", title_justify="left")
        for column in ("variant", "req/s", "p50 ms", "p99 ms", "errors", "instances"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        recent: dict[str, list[float]] = {}
        errors: dict[str, int] = {}
        since = self._now - self.window
        for sample in list(self._samples):
            name = sample.variant or "-"
            errors[name] = errors.get(name, 0) + (not sample.ok)
            if sample.at + sample.latency >= since:
                recent.setdefault(name, []).append(sample.latency)
        span = min(self.window, self._now) or 1.0
        for name in sorted(set(recent) | set(errors) | set(self._instances)):
            latencies = sorted(recent.get(name, []))
            count = self._instances.get(name)
            table.add_row(
                escape(name),
                f"{len(latencies) / span:.1f}",
                f"{percentile(latencies, 50) * 1000:.2f}",
                f"{percentile(latencies, 99) * 1000:.2f}",
                str(errors.get(name, 0)),
                "-" if count is None else str(count),
            )
        return table


_WIDTH, _HEIGHT, _LEFT, _TOP = 760, 170, 56, 22
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def chart_html(line: Timeline, title: str) -> str:
    """The page: three charts over the same time axis (instances, req/s, latency), the series
    as JSON. Self-contained: no script, no stylesheet or font fetched."""
    instances = {k: [max(v, 0) for v in vs] for k, vs in line.instances.items()}
    panels = [
        _panel("instances serving", line.start, instances, steps=True),
        _panel("requests per second", line.start, {"req/s": line.rps, "errors/s": line.errors}),
        _panel("latency (ms)", line.start, {"p50": line.p50_ms, "p99": line.p99_ms}),
    ]
    data = json.dumps(line.as_json()).replace("</", "<\\/")
    total, failed = sum(line.requests), sum(line.errors)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px;color:#222}"
        "svg{display:block;margin-bottom:18px}text{font-size:11px}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>"
        f"<p>{total} requests, {failed} failed, over {len(line.start) * line.step:g} s "
        f"(steps of {line.step:g} s).</p>\n"
        + "\n".join(panels)
        + f'\n<script type="application/json" id="series">{data}</script>\n</body></html>\n'
    )


def _panel(
    title: str, xs: list[float], series: dict[str, list[Any]], *, steps: bool = False
) -> str:
    """One chart: an SVG with axes, a line per series and a legend."""
    width, height = _WIDTH - _LEFT - 16, _HEIGHT - _TOP - 28
    top = max([max(v, default=0) for v in series.values()] + [1])
    top = top * 1.1 if not steps else top + 1
    end = max(xs[-1] if xs else 1.0, 1.0)

    def x(value: float) -> float:
        return _LEFT + value / end * width

    def y(value: float) -> float:
        return _TOP + height - value / top * height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{_LEFT}" y="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + height}" x2="{_LEFT + width}" y2="{_TOP + height}" '
        'stroke="#999"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + height}" stroke="#999"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = top * fraction
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.4g}</text>'
        )
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        at = end * fraction
        parts.append(
            f'<text x="{x(at):.1f}" y="{_TOP + height + 16}" text-anchor="middle">{at:.0f} s</text>'
        )
    for number, (name, values) in enumerate(series.items()):
        colour = _COLOURS[number % len(_COLOURS)]
        points: list[str] = []
        for index, value in enumerate(values):
            if steps and index > 0:
                points.append(f"{x(xs[index]):.1f},{y(values[index - 1]):.1f}")
            points.append(f"{x(xs[index]):.1f},{y(value):.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
            f'points="{" ".join(points)}"/>'
        )
        legend = _LEFT + width - 120 * (len(series) - number)
        parts.append(f'<rect x="{legend}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{legend + 14}" y="15">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
