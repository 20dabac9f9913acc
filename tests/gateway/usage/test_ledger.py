"""The fold from events to hourly rows, and the attribution of instance time to models."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cloudwatch.recorder import Recorder
from gateway.usage.ledger import COLUMNS, HOUR, Ledger, Rows, hours
from gateway.usage.report import UsageQueryError, parse_prices, parse_time, summarise

T0 = 1_800_000_000 // HOUR * HOUR  # the start of an hour


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fold(recorder: Recorder, ledger: Ledger, now: float) -> Rows:
    """What the ledger makes, at ``now``, of everything the recorder holds (drained through a
    tap, as the metric store's flush hands it over)."""
    events: list[tuple[Any, ...]] = []
    drained = events.extend
    recorder.tap(lambda batch: drained(batch))
    recorder.drain()
    drained = list[tuple[Any, ...]]().extend  # later drains (the next call's) go elsewhere
    return ledger.fold(events, now)


def col(rows: Rows, name: str, *, model: str | None = None, hour: int | None = None) -> float:
    i = COLUMNS.index(name)
    return sum(
        v[i]
        for k, v in rows.items()
        if (model is None or k[4] == model) and (hour is None or k[0] == hour)
    )


def test_hours_cut_an_interval_at_hour_boundaries() -> None:
    assert list(hours(T0 + 3000, T0 + 4200)) == [(T0, 600.0), (T0 + HOUR, 600.0)]
    assert list(hours(T0, T0)) == []


def test_model_time_is_the_containers_own_and_the_hop_is_overhead() -> None:
    """A container that reported its time is charged that; the gateway's measure is charged
    to a container that did not; model time and overhead still add up to the whole."""
    clock = Clock(T0 + 10)
    rec = Recorder(clock)
    rec.invocation("ep", "v", "a", "2xx", 3000, 500, 10, 20, container_us=1000)
    rec.invocation("ep", "v", "a", "2xx", 2000, 500, 10, 20)  # no Server-Timing from it
    rec.invocation("ep", "v", "a", "5xx", 800, 100, 5, 0, container_us=600)
    rows = fold(rec, Ledger(), clock.now)
    assert col(rows, "model_seconds", model="a") == pytest.approx((1000 + 2000 + 600) / 1e6)
    assert col(rows, "overhead_seconds", model="a") == pytest.approx((2500 + 500 + 300) / 1e6)


def test_invocations_and_error_classes_as_cloudwatch_counts_them() -> None:
    clock = Clock(T0 + 10)
    rec = Recorder(clock)
    rec.invocation("ep", "v", "a", "2xx", 2000, 500, 10, 20)
    rec.invocation("ep", "v", "a", "4xx", None, None, 5, 0)
    rec.invocation("ep", "v", "a", "model-error", 1000, 100, 5, 0, model_status=404)
    rec.invocation("ep", "v", "b", "model-error", None, None, 5, 0)  # a timeout: 5xx
    rec.invocation("ep", "v", "b", "5xx", None, None, 1, 0)
    rec.invocation("ep", "v", None, "2xx", 1000, 0, 1, 1)
    rows = fold(rec, Ledger(), clock.now)
    assert col(rows, "invocations", model="a") == 3
    assert col(rows, "errors_4xx", model="a") == 2
    assert col(rows, "model_errors", model="a") == 1
    assert col(rows, "errors_5xx", model="b") == 2
    assert col(rows, "model_errors", model="b") == 1
    assert col(rows, "model_seconds", model="a") == pytest.approx(0.003)
    assert col(rows, "overhead_seconds", model="a") == pytest.approx(0.0006)
    assert (col(rows, "bytes_in", model="a"), col(rows, "bytes_out", model="a")) == (20, 20)
    assert col(rows, "invocations", model="") == 1  # no TargetModel: the variant's own row
    assert {k[3] for k in rows} == {""}  # no inference components yet


def test_memory_and_instances_accrue_across_hours_and_flushes() -> None:
    clock = Clock(T0 + 3000)
    rec, ledger = Recorder(clock), Ledger()
    rec.instance_count("ep", "v", 2)
    rec.model_loaded("ep", "v", "a", 1_000_000, 500_000, 1, size_bytes=100)
    rec.model_loaded("ep", "v", "a", None, 250_000, 1, size_bytes=50)  # a second instance's copy
    first = fold(rec, ledger, T0 + 3600)
    assert col(first, "loads", model="a") == 2
    assert col(first, "load_seconds", model="a") == pytest.approx(1.75)
    assert col(first, "memory_byte_seconds", model="a") == pytest.approx(150 * 600)
    assert col(first, "instance_seconds", model="") == pytest.approx(2 * 600)
    clock.now = T0 + 3900
    rec.model_unloaded("ep", "v", "a", 1000, 0)  # the first copy goes: 50 bytes stay
    second = fold(Recorder(clock), ledger, T0 + 3600)  # nothing new: nothing before 3600 again
    assert second == {}
    rows = fold(rec, ledger, T0 + 4200)
    assert col(rows, "memory_byte_seconds", hour=T0 + HOUR) == pytest.approx(150 * 300 + 50 * 300)
    assert col(rows, "instance_seconds", hour=T0 + HOUR) == pytest.approx(2 * 600)


def test_attribution_shares_instance_time_by_model_time_and_by_memory() -> None:
    clock = Clock(T0)
    rec, ledger = Recorder(clock), Ledger()
    rec.instance_count("ep", "v", 1)
    rec.model_loaded("ep", "v", "a", None, 0, 1, size_bytes=300)
    rec.model_loaded("ep", "v", "b", None, 0, 2, size_bytes=100)
    for _ in range(3):
        rec.invocation("ep", "v", "a", "2xx", 1_000_000, 0, 1, 1)
    rec.invocation("ep", "v", "b", "2xx", 3_000_000, 0, 1, 1)
    rows = fold(rec, ledger, T0 + 3600)
    priced = {g["model"]: g for g in summarise(rows, "model", price=lambda e, v: 2.0)}
    a, b = priced["a"], priced["b"]
    assert a["invocations"] == 3 and b["invocations"] == 1
    assert a["compute_share"] == pytest.approx(0.5) and b["compute_share"] == pytest.approx(0.5)
    assert a["memory_share"] == pytest.approx(0.75) and b["memory_share"] == pytest.approx(0.25)
    assert a["instance_hours_by_memory"] == pytest.approx(0.75)
    assert a["cost_by_compute"] == pytest.approx(1.0) and a["cost_by_memory"] == pytest.approx(1.5)
    # The variant's own row holds the instance time; none of it is idle here.
    assert priced[None]["instance_hours"] == pytest.approx(1.0)
    assert priced[None]["instance_hours_by_compute"] == 0
    (variant,) = summarise(rows, "variant", price=lambda e, v: None)
    assert variant["invocations"] == 4 and variant["cost_by_compute"] is None
    assert variant["instance_hours_by_compute"] == pytest.approx(1.0)
    assert [g["model"] for g in summarise(rows, "model", price=lambda e, v: None, top=1)] == ["a"]


def test_idle_instance_time_stays_with_the_variant() -> None:
    rec, ledger = Recorder(Clock(T0)), Ledger()
    rec.instance_count("ep", "v", 3)
    rec.model_loaded("ep", "v", "cold", None, 0, 1, size_bytes=10)  # loaded, never invoked
    rows = fold(rec, ledger, T0 + 1200)
    idle, cold = summarise(rows, "model", price=lambda e, v: 1.0)
    assert idle["model"] is None and idle["instance_hours_by_compute"] == pytest.approx(1.0)
    assert idle["cost_by_memory"] == 0 and cold["cost_by_memory"] == pytest.approx(1.0)
    assert cold["instance_hours_by_compute"] == 0 and cold["memory_share"] == 1.0


def test_bad_queries_name_what_was_wrong() -> None:
    with pytest.raises(UsageQueryError, match="by 'tenant' is not a grouping"):
        summarise({}, "tenant", price=lambda e, v: None)
    with pytest.raises(UsageQueryError, match="--since 'yesterday' is not a time"):
        parse_time("--since", "yesterday", 0.0)
    with pytest.raises(UsageQueryError, match="'m5' is not INSTANCE_TYPE=PRICE"):
        parse_prices("m5")
    assert parse_time("x", "2h", 10_000.0) == 10_000.0 - 7200
    assert parse_time("x", "1970-01-01T00:01:00Z", 0.0) == 60.0
    assert parse_prices("ml.m5.large=0.115, *=0.05") == {"ml.m5.large": 0.115, "*": 0.05}
