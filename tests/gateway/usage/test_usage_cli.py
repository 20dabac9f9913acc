"""``tandem usage`` and ``GET /usage`` over a ledger fed through the metric recorder."""

from __future__ import annotations

import csv
import io
import random

import httpx
import pytest

from tests.gateway.usage.conftest import World, services


def zipf_stream(world: World, models: int, requests: int) -> dict[str, int]:
    """``requests`` invocations over ``models`` models of endpoint ``mme``, Zipf-like."""
    rng = random.Random(7)
    names = [f"customer-{i:04d}.tar.gz" for i in range(models)]
    weights = [1 / (rank + 1) for rank in range(models)]
    sent: dict[str, int] = {}
    for name in rng.choices(names, weights, k=requests):
        sent[name] = sent.get(name, 0) + 1
        world.recorder.invocation("mme", "AllTraffic", name, "2xx", 1500, 200, 100, 40)
    return sent


def test_by_model_lists_each_models_invocations_and_sums_match(world: World) -> None:
    world.recorder.instance_count("mme", "AllTraffic", 2)
    world.recorder.model_loaded("mme", "AllTraffic", "customer-0000.tar.gz", None, 1, 1,
                                size_bytes=2**20)  # fmt: skip
    sent = zipf_stream(world, 1000, 5000)
    world.clock.now += 600
    groups = world.groups("--by", "model")
    got = {g["model"]: g["invocations"] for g in groups if g["invocations"]}
    assert got == sent
    (endpoint,) = world.groups("--by", "endpoint")
    assert endpoint["invocations"] == sum(sent.values())
    assert sum(g["compute_share"] for g in groups) == pytest.approx(1.0, rel=1e-5)
    assert sum(g["instance_hours_by_compute"] for g in groups) == pytest.approx(
        endpoint["instance_hours"], rel=1e-5
    )
    assert endpoint["instance_hours"] == pytest.approx(2 * 600 / 3600)
    assert endpoint["cost_by_compute"] == pytest.approx(0.5 * endpoint["instance_hours"])
    top = {g["model"]: g for g in groups}["customer-0000.tar.gz"]
    assert top["memory_share"] == 1.0
    assert top["memory_gib_hours"] == pytest.approx(600 / 3600 / 1024)
    assert [g["component"] for g in groups] == [None] * len(groups)  # no components yet
    assert len(world.groups("--by", "model", "--top", "3")) == 3


def test_table_and_csv(world: World) -> None:
    world.recorder.invocation("ep", "v1", None, "4xx", None, None, 10, 0)
    table = world.cli("--by", "variant")
    assert table.exit_code == 0 and "v1" in table.stdout and "Invocations" in table.stdout
    rows = list(csv.DictReader(io.StringIO(world.cli("--format", "csv", "--by", "variant").stdout)))
    assert [(r["endpoint"], r["variant"], r["errors_4xx"]) for r in rows] == [("ep", "v1", "1")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "tenant"], "--by 'tenant' is not a grouping"),
        (["--format", "xml"], "--format 'xml'"),
        (["--top", "0"], "--top 0"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(world: World, args: list[str], message: str) -> None:
    result = world.cli(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_bad_times_exit_2(world: World) -> None:
    from typer.testing import CliRunner

    from gateway.cli.main import app

    result = CliRunner().invoke(app, ["usage", "--since", "last tuesday", "--url", world.url])
    assert result.exit_code == 2 and "--since 'last tuesday' is not a time" in result.stderr


def test_the_endpoint_answers_bad_input_with_a_validation_error(world: World) -> None:
    answer = httpx.get(f"{world.url}/usage", params={"by": "customer"})
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "ValidationError"
    assert "by 'customer'" in answer.json()["Message"]
    answer = httpx.get(f"{world.url}/usage", params={"since": "5m", "until": "1h"})
    assert answer.status_code == 400 and "must be after since" in answer.json()["Message"]
    assert httpx.get(f"{world.url}/usage", params={"frm": "1h"}).status_code == 400


def test_the_ledger_survives_a_restart_and_is_pruned_by_retention(world: World) -> None:
    world.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    world.metrics.flush()
    world.usage.close()
    world.metrics.store.close()
    metrics, usage = services(world.state, world.clock, usage_retention_days=1)
    try:
        (row,) = usage.report(world.clock.now - 3600, world.clock.now + 1, "model")
        assert (row["model"], row["invocations"]) == ("m", 1)
        metrics.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
        (row,) = usage.report(world.clock.now - 3600, world.clock.now + 1, "model")
        assert row["invocations"] == 2  # added to the same hour's row
        world.clock.now += 2 * 86400
        metrics.recorder.invocation("ep", "v", "n", "2xx", 1000, 10, 1, 1)
        groups = usage.report(0, world.clock.now + 1, "model")
        assert [g["model"] for g in groups] == ["n"]
    finally:
        usage.close()
        metrics.store.close()
        world.metrics, world.usage = services(world.state, world.clock)  # for the fixture's close


def test_rows_a_failed_write_could_not_store_are_kept_for_the_next(world: World) -> None:
    from gateway.usage.store import UsageStore

    world.usage.store.close()  # every write fails now: the metric store's flush must not
    world.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    world.metrics.flush()
    world.usage.store = UsageStore(world.usage.store.path)
    (row,) = world.usage.report(world.clock.now - 60, world.clock.now + 1, "model")
    assert (row["model"], row["invocations"]) == ("m", 1)


def test_bad_prices_are_refused_at_start() -> None:
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    with pytest.raises(ValidationError, match="usage_prices"):
        GatewaySettings(usage_prices="ml.m5.large")
    assert GatewaySettings(usage_prices="ml.m5.large=0.1,*=2").usage_prices


def test_rows_folded_between_writes_are_read_at_once_and_kept_at_a_stop(world: World) -> None:
    """The table is written every ``write_every`` seconds; a read and a stop write first."""
    world.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    world.metrics.flush()  # folded and written: the first write of this service
    world.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    world.clock.now += 1
    world.metrics.flush()  # folded, not written: 1 s since the last write
    (row,) = world.usage.store.read(world.clock.now - 60, world.clock.now + 1).values()
    assert row[0] == 1  # the second is in memory until the next write
    (group,) = world.groups("--by", "model")  # a read writes first
    assert group["invocations"] == 2
    world.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    world.clock.now += 1
    world.metrics.flush()
    world.usage.close()  # a stop writes what was folded
    world.metrics.store.close()
    metrics, usage = services(world.state, world.clock)
    try:
        (row,) = usage.report(world.clock.now - 60, world.clock.now + 1, "model")
        assert row["invocations"] == 3
    finally:
        usage.close()
        metrics.store.close()
        world.metrics, world.usage = services(world.state, world.clock)  # for the fixture's close
