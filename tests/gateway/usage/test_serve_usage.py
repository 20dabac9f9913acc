"""``tandem serve`` as a real process: its ledger behind ``GET /usage`` and ``tandem usage``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from gateway.cli.main import app as cli
from gateway.multimodel.targets import container_name
from tests.gateway.harness import sagemaker_client
from tests.gateway.multimodel.stores import (
    csv_body,
    gateway,
    pack,
    synthetic,
    train_classifier,
    wait_for,
    write_spec,
)
from tests.gateway.processes import shell


def container_seconds(url: str) -> dict[str, float]:
    """The container's own seconds per model, from its ``GET /metrics``."""
    text = httpx.get(f"{url}/metrics").text
    return {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "tandem_container_invocation_seconds"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def usage(url: str, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["usage", *args, "--format", "json", "--url", url])
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def hours_past(url: str, before: float) -> float:
    """The demo variant's instance-hours if they are past ``before``, else 0."""
    rows = usage(url, "--by", "variant")
    if not rows:
        return 0.0  # not counted yet: the first flush is to come
    (row,) = rows
    assert (row["endpoint"], row["variant"]) == ("demo", "AllTraffic")
    found = float(row["instance_hours"])  # type: ignore[arg-type]
    return found if found > before else 0.0


def test_a_served_gateway_keeps_instance_hours_across_a_restart(tmp_path: Path) -> None:
    """The instances are counted before each flush; the ledger reads back after a restart."""
    spec = write_spec(tmp_path, "demo", "Direct", {"a": {"command": shell("exec $SERVER")}})
    quick = {"TANDEM_METRIC_FLUSH_INTERVAL": "0.2"}
    hours = 0.0
    for _ in range(2):  # the second start opens the same state folder's ledger
        with gateway(tmp_path, spec, env=quick) as (url, _log):
            hours = wait_for(partial(hours_past, url, hours), what="instance hours to grow")
            bad = httpx.get(f"{url}/usage", params={"by": "tenant"})
            assert bad.status_code == 400 and "by 'tenant'" in bad.json()["Message"]
            scrape = httpx.get(f"{url}/metrics").text
            assert "# TYPE tandem_model_window_invocations gauge" in scrape


@pytest.mark.sklearn
@pytest.mark.slow
def test_usage_by_model_lists_each_models_invocations_exactly_as_sent(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    sent = {"alpha.tar.gz": 3, "team/beta.tar.gz": 2, "gamma.tar.gz": 1}
    for seed, target in enumerate(sent):
        pack(tmp_path / "store" / target, train_classifier(seed))
    spec = write_spec(
        tmp_path,
        "tenants",
        "Serial",
        {"multi": {"framework": "sklearn", "mode": "MultiModel", "model_data": "./store"}},
    )
    with gateway(tmp_path, spec) as (url, _log):
        client = sagemaker_client(url)
        for target, count in sent.items():
            for _ in range(count):
                client.invoke_endpoint(
                    EndpointName="tenants",
                    ContentType="text/csv",
                    TargetModel=target,
                    Body=csv_body(synthetic(2, seed=1)),
                )
        groups = usage(url, "--by", "model", "--since", "1h")
        got = {g["model"]: g["invocations"] for g in groups if g["invocations"]}
        assert got == sent
        assert all(g["endpoint"] == "tenants" and g["variant"] == "AllTraffic" for g in groups)
        (endpoint,) = usage(url, "--by", "endpoint", "--since", "1h")
        assert endpoint["invocations"] == sum(sent.values())
        shares = [g["compute_share"] for g in groups if g["model"]]
        assert sum(shares) == pytest.approx(1.0, rel=1e-5)  # type: ignore[arg-type]
        assert all(g["memory_gib_hours"] for g in groups if g["model"])
        # Model time is the container's own (its Server-Timing), the same as its own count.
        (described,) = httpx.get(f"{url}/endpoints/tenants").json()["Containers"]
        own = container_seconds(described["Url"])
        for g in groups:
            if g["model"]:
                mine = own[container_name(str(g["model"]))]
                assert g["model_seconds"] == pytest.approx(mine, abs=1e-5)
