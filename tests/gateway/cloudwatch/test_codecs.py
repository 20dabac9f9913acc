"""The CBOR codec and the percentile sketch on their own: the edges boto3 does not reach."""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime

import pytest

from gateway.cloudwatch import cbor
from gateway.cloudwatch.sketch import ACCURACY, Stats


def test_cbor_round_trips_what_the_answers_hold() -> None:
    when = datetime(2026, 12, 7, 13, 0, 30, 250000, tzinfo=UTC)
    value = {
        "Label": "Invocations",
        "Datapoints": [{"Timestamp": when, "Sum": 12.5, "Count": 2**40, "Neg": -7}],
        "Ok": True,
        "Nothing": None,
        "Raw": b"\x00\x01",
    }
    back = cbor.loads(cbor.dumps(value))
    assert back["Datapoints"][0]["Timestamp"] == when
    back["Datapoints"][0]["Timestamp"] = when
    assert back == value


def test_cbor_reads_indefinite_lengths_and_short_floats() -> None:
    # {_ "a": [_ 1, 2], "b": (_ "x", "y")} then half and single precision floats
    data = bytes([0xBF, 0x61, 0x61, 0x9F, 0x01, 0x02, 0xFF, 0x61, 0x62, 0x7F, 0x61, 0x78])
    data += bytes([0x61, 0x79, 0xFF, 0xFF])
    assert cbor.loads(data) == {"a": [1, 2], "b": "xy"}
    assert cbor.loads(b"\xf9" + struct.pack(">e", 1.5)) == 1.5
    assert cbor.loads(b"\xfa" + struct.pack(">f", 0.25)) == 0.25


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01\x02", b"\x62a", b"\x9f\x01", b"\x81" * 100 + b"\x01", b"\xff", b"\x1c"],
)
def test_cbor_refuses_what_is_not_one_item(data: bytes) -> None:
    with pytest.raises(ValueError):
        cbor.loads(data)


def test_the_sketch_merges_exactly_and_handles_zero_and_negatives() -> None:
    rng = random.Random(3)
    values = [rng.uniform(-50, 50) for _ in range(2000)] + [0.0] * 100
    whole, left, right = Stats(), Stats(), Stats()
    whole.add_values(values)
    left.add_values(values[:700])
    for v in values[700:]:
        right.add(v)
    left.merge(right)
    assert (left.count, left.minimum, left.maximum) == (whole.count, whole.minimum, whole.maximum)
    assert left.hist == whole.hist
    ordered = sorted(values)
    for p in (1, 25, 50, 75, 99):
        exact = ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]
        got = whole.percentile(p)
        assert got is not None and abs(got - exact) <= ACCURACY * abs(exact) + 1e-6, (p, got)


def test_a_statistic_set_has_no_percentiles() -> None:
    stats = Stats()
    stats.add(5.0)
    stats.add_set(10, 100.0, 1.0, 20.0)
    assert (stats.count, stats.total, stats.minimum, stats.maximum) == (11, 105.0, 1.0, 20.0)
    assert stats.percentile(50) is None
