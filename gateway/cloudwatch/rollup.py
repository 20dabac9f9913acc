"""Events into datapoints: the flusher's half of the recorder, in two passes.

An event is ``(kind, time, *identity, *values)``: the identity names what it is about (endpoint,
variant, model), the values are what happened. The first pass groups the events by kind, time
bucket and identity, one tuple append each; the second turns each group's columns into the
metrics SageMaker publishes and summarises each metric's values once (``Stats.add_values``: C's
``sum``, ``min``, ``max`` and ``Counter``, a histogram key per distinct value). The flusher so
holds the GIL for about a microsecond or two per request, not once per metric and value.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.cloudwatch import names as n
from gateway.cloudwatch.names import Metric
from gateway.cloudwatch.sketch import Stats

#: A datapoint's identity: namespace, name, dimensions (sorted (Name, Value) pairs), unit,
#: resolution in seconds, and the start of its time bucket (epoch seconds).
Dims = tuple[tuple[str, str], ...]
Key = tuple[str, str, Dims, str, int, int]
Rollup = dict[Key, Stats]

# The kinds of event, and how many fields after (kind, time) are the identity.
INVOCATION, CONCURRENT, CACHE, LOADED, UNLOADED, SETUP, COUNT, SAMPLE, BACKLOG, NO_CAPACITY = range(
    10
)
# Inference components' (dimension InferenceComponentName): a call, the requests in flight per
# copy, a request that found no copy; COPIES (like COUNT) the copies ``InvocationsPerCopy``
# divides by.
COMPONENT, COMPONENT_CONCURRENT, COMPONENT_NO_CAPACITY, COPIES = range(10, 14)
_IDENTITY = {
    INVOCATION: 3, CONCURRENT: 2, CACHE: 3, LOADED: 3, UNLOADED: 3, SETUP: 2, SAMPLE: 2, BACKLOG: 1,
    NO_CAPACITY: 2, COMPONENT: 1, COMPONENT_CONCURRENT: 1, COMPONENT_NO_CAPACITY: 1,
}  # fmt: skip
_HIGH_RESOLUTION = frozenset({CONCURRENT, NO_CAPACITY, COMPONENT_CONCURRENT, COMPONENT_NO_CAPACITY})
#: Dimension sets cached, at most (then the cache starts over).
MAX_DIMENSION_SETS = 100_000

Columns = list[tuple[Any, ...]]
Values = list[tuple[Metric, Dims, list[Any]]]


def dims(**values: str) -> Dims:
    """Canonical dimensions: CloudWatch treats a metric's dimensions as a set."""
    return tuple(sorted(values.items()))


class Rollups:
    """What rolling up needs to remember between flushes: instance counts, dimension sets."""

    def __init__(self) -> None:
        #: (endpoint, variant) -> instances, as the events rolled up so far say.
        self._instances: dict[tuple[str, str], int] = {}
        #: inference component -> copies, likewise.
        self._copies: dict[str, int] = {}
        self._dims: dict[tuple[str, str | None, str | None], Dims] = {}
        #: Which models get ``TargetModel`` series (endpoint, variant, model); None: every one.
        self.per_model: Callable[[str, str, str], bool] | None = None

    def roll(self, events: deque[tuple[Any, ...]]) -> Rollup:
        """Take every event now in ``events`` and roll it up."""
        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        popleft = events.popleft
        instances, copies = self._instances, self._copies
        for _ in range(len(events)):
            event = popleft()
            kind = event[0]
            if kind == COUNT:
                instances[(event[2], event[3])] = max(int(event[4]), 1)
                continue
            if kind == COPIES:
                copies[event[2]] = max(int(event[3]), 1)
                continue
            res = 10 if kind in _HIGH_RESOLUTION else 60
            cut = 2 + _IDENTITY[kind]
            key = (kind, int(event[1] // res * res), *event[2:cut])
            row = event[cut:]
            if kind == INVOCATION:  # the last two (own time, component) are the ledger's
                row = (*event[cut:11], 1.0 / instances.get((event[2], event[3]), 1))
            elif kind == COMPONENT:
                row += (1.0 / copies.get(event[2], 1),)
            rows = groups.get(key)
            if rows is None:
                groups[key] = [row]
            else:
                rows.append(row)
        out: Rollup = {}
        for (kind, ts, *identity), rows in groups.items():
            for metric, d, values in self._expand(kind, identity, list(zip(*rows, strict=True))):
                if not values:
                    continue
                key = (metric.namespace, metric.name, d, metric.unit, metric.resolution, ts)
                stats = out.get(key)
                if stats is None:
                    stats = out[key] = Stats()
                stats.add_values(values)
        if len(self._dims) > MAX_DIMENSION_SETS:
            self._dims.clear()
        return out

    def _expand(self, kind: int, identity: list[Any], columns: Columns) -> Values:
        """One group's columns as (metric, dimensions, values)."""
        if kind == BACKLOG:
            d = self._dims_of(identity[0], None)
            size, per_instance, oldest, without = columns
            flags = [1.0 if w else 0.0 for w in without]
            metrics = (n.BACKLOG, n.BACKLOG_PER_INSTANCE, n.OLDEST_AGE, n.WITHOUT_CAPACITY)
            return list(
                zip(
                    metrics,
                    [d] * 4,
                    [list(size), list(per_instance), list(oldest), flags],
                    strict=True,
                )
            )
        if kind >= COMPONENT:
            return self._component(kind, identity[0], columns)
        d = self._dims_of(identity[0], identity[1])
        if kind == INVOCATION:
            return self._invocations(identity, columns)
        if kind == CONCURRENT:
            return [(n.CONCURRENT, d, list(columns[0]))]
        if kind == SETUP:
            return [(n.SETUP_TIME, d, list(columns[0]))]
        if kind == NO_CAPACITY:
            return [(n.NO_CAPACITY, d, list(columns[0]))]
        if kind == SAMPLE:
            return [
                (m, d, list(c)) for m, c in zip((n.CPU, n.MEMORY, n.DISK), columns, strict=True)
            ]
        if kind == CACHE:
            hits, waits = columns
            pairs = [(n.CACHE_HIT, [1.0 if h else 0.0 for h in hits]), (n.LOADING_WAIT, waits)]
        elif kind == LOADED:
            downloads, loads, counts, _sizes = columns
            pairs = [(n.DOWNLOADING, downloads), (n.LOADING, loads), (n.LOADED_COUNT, counts)]
        else:  # UNLOADED
            unloads, counts = columns
            pairs = [(n.UNLOADING, unloads), (n.LOADED_COUNT, counts)]
        return self._with_model(identity, pairs)

    def _invocations(
        self, identity: list[Any], columns: Columns, dimensions: Dims | None = None
    ) -> Values:
        status, model_us, overhead_us, size_in, size_out, code, per_instance = columns
        # A model error is classed by the container's status; without one (a timeout): 5xx.
        client = [
            s == "4xx" or (s == "model-error" and c is not None and 400 <= c < 500)
            for s, c in zip(status, code, strict=True)
        ]
        server = [
            s == "5xx" or (s == "model-error" and not k)
            for s, k in zip(status, client, strict=True)
        ]
        pairs: list[tuple[Metric, Any]] = [
            (n.INVOCATIONS, [1.0] * len(status)),
            (n.ERRORS_4XX, [1.0 if k else 0.0 for k in client]),
            (n.ERRORS_5XX, [1.0 if k else 0.0 for k in server]),
            (n.MODEL_ERRORS, [1.0 if s == "model-error" else 0.0 for s in status]),
            (n.MODEL_LATENCY, model_us),
            (n.OVERHEAD_LATENCY, overhead_us),
        ]
        if dimensions is not None:  # an inference component's: per copy, not per instance
            out = [(m, dimensions, [v for v in values if v is not None]) for m, values in pairs]
            out.append((n.PER_COPY, dimensions, list(per_instance)))
            return out
        d = self._dims_of(identity[0], identity[1])
        out = self._with_model(identity, pairs)
        out.append((n.PER_INSTANCE, d, list(per_instance)))
        out.append((n.REQUEST_BYTES, d, list(size_in)))
        out.append((n.RESPONSE_BYTES, d, list(size_out)))
        return out

    def _component(self, kind: int, component: str, columns: Columns) -> Values:
        """An inference component's metrics, under ``InferenceComponentName`` alone."""
        d = self._dims_of("", None, component=component)
        if kind == COMPONENT_CONCURRENT:
            return [(n.CONCURRENT_PER_COPY, d, list(columns[0]))]
        if kind == COMPONENT_NO_CAPACITY:
            return [(n.NO_CAPACITY, d, list(columns[0]))]
        status, model_us, overhead_us, code, per_copy = columns
        sizes = (0,) * len(status)
        out = self._invocations([component, None, None], [
            status, model_us, overhead_us, sizes, sizes, code, per_copy
        ], dimensions=d)  # fmt: skip
        return [(m, dd, v) for m, dd, v in out if m.namespace == n.SAGEMAKER]

    def _with_model(self, identity: list[Any], pairs: list[tuple[Metric, Any]]) -> Values:
        """Each metric's values (Nones left out) under the variant's dimensions, and again under
        the model's for the per-model metrics."""
        endpoint, variant, model = identity
        d = self._dims_of(endpoint, variant)
        cleaned = [(m, [v for v in values if v is not None]) for m, values in pairs]
        out: Values = [(m, d, values) for m, values in cleaned]
        if model is not None and (
            self.per_model is None or self.per_model(endpoint, variant, model)
        ):
            dm = self._dims_of(endpoint, variant, model)
            out += [(m, dm, values) for m, values in cleaned if m.name in n.PER_MODEL]
        return out

    def _dims_of(
        self,
        endpoint: str,
        variant: str | None,
        model: str | None = None,
        *,
        component: str | None = None,
    ) -> Dims:
        """The (cached) dimensions of an endpoint, a variant, a variant's model or an inference
        component."""
        key = (endpoint, variant, model) if component is None else ("", None, "\0" + component)
        found = self._dims.get(key)
        if found is None and component is not None:
            found = self._dims[key] = dims(InferenceComponentName=component)
        if found is None:
            values = {"EndpointName": endpoint}
            if variant is not None:
                values["VariantName"] = variant
            if model is not None:
                values["TargetModel"] = model
            found = self._dims[key] = dims(**values)
        return found
