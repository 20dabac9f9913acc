"""``tandem k8s`` for an endpoint with ``async_inference``: its HPA also scales on the backlog per
instance (SageMaker's ApproximateBacklogSizePerInstance), through a prometheus-adapter rule that
serves the gateway's own gauge; every object still valid Kubernetes (offline schemas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gateway.asynchronous.metrics import BACKLOG_PER_INSTANCE
from gateway.cli.main import app
from gateway.ops.k8s import BACKLOG_METRIC, INVOCATIONS_METRIC, K8sError, Options, manifests
from gateway.ops.k8s_files import ADAPTER_VALUES, render_files
from pipelines.spec import EndpointSpec
from tests.gateway.ops.test_k8s import validate

QUEUED = {
    "name": "queued",
    "containers": [{"image": "registry.example.com/model:1.0"}],
    "async_inference": {"output_path": "s3://answers/out", "failure_path": "s3://answers/failed"},
}
REALTIME = {"name": "realtime", "containers": [{"image": "registry.example.com/model:1.0"}]}


def spec(fields: dict[str, Any]) -> EndpointSpec:
    return EndpointSpec.model_validate({"source": Path("/srv/specs"), **fields})


def metrics(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The HPA's Pods metrics: name -> average value."""
    found = objects["hpa.yaml"]["spec"]["metrics"]
    assert all(m["type"] == "Pods" for m in found)
    assert all(m["pods"]["target"]["type"] == "AverageValue" for m in found)
    return {m["pods"]["metric"]["name"]: m["pods"]["target"]["averageValue"] for m in found}


def test_an_async_endpoint_scales_on_its_backlog_per_instance() -> None:
    objects = manifests(spec(QUEUED), Options(target_backlog=3, target_invocations=120))
    assert metrics(objects) == {INVOCATIONS_METRIC: "120", BACKLOG_METRIC: "3"}
    for obj in objects.values():
        validate(obj)
    # A real-time endpoint's HPA is unchanged.
    assert metrics(manifests(spec(REALTIME), Options())) == {INVOCATIONS_METRIC: "600"}


def test_the_hpa_asks_for_the_gauge_the_gateway_publishes() -> None:
    assert BACKLOG_METRIC == BACKLOG_PER_INSTANCE


def test_the_adapter_serves_the_backlog_gauge_only_when_an_endpoint_queues() -> None:
    both = yaml.safe_load(render_files([spec(QUEUED), spec(REALTIME)], Options())[ADAPTER_VALUES])
    invocations, backlog = both["rules"]["custom"]
    assert invocations["name"]["as"] == INVOCATIONS_METRIC
    assert backlog["seriesQuery"] == f'{BACKLOG_PER_INSTANCE}{{namespace!="",pod!=""}}'
    assert backlog["name"] == {"matches": f"^{BACKLOG_PER_INSTANCE}$", "as": BACKLOG_METRIC}
    assert backlog["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert "rate(" not in backlog["metricsQuery"]  # a gauge, read as it is
    alone = yaml.safe_load(render_files([spec(REALTIME)], Options())[ADAPTER_VALUES])
    assert [r["name"]["as"] for r in alone["rules"]["custom"]] == [INVOCATIONS_METRIC]


def test_a_folder_output_or_a_bad_target_is_refused() -> None:
    local = {**QUEUED, "async_inference": {"output_path": "./answers"}}
    with pytest.raises(K8sError, match=r"queued: async_inference\.output_path: .*s3://"):
        manifests(spec(local), Options())
    failing = {**QUEUED, "async_inference": {"output_path": "s3://a/o", "failure_path": "/srv/f"}}
    with pytest.raises(K8sError, match=r"async_inference\.failure_path"):
        manifests(spec(failing), Options())
    with pytest.raises(K8sError, match="target backlog"):
        Options(target_backlog=0)


def test_cli_takes_the_backlog_target(tmp_path: Path) -> None:
    spec_file = tmp_path / "queued.yaml"
    spec_file.write_text(yaml.safe_dump(QUEUED))
    result = CliRunner().invoke(app, ["k8s", str(spec_file), "--target-backlog", "2.5"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    validate(hpa)
    assert metrics({"hpa.yaml": hpa})[BACKLOG_METRIC] == "2.5"
    out = tmp_path / "out"
    written = CliRunner().invoke(app, ["k8s", str(spec_file), "-o", str(out)])
    assert written.exit_code == 0, written.output
    values = yaml.safe_load((out / ADAPTER_VALUES).read_text())
    assert BACKLOG_METRIC in [r["name"]["as"] for r in values["rules"]["custom"]]


def test_an_async_endpoints_sidecars_take_inputs_of_the_async_limit() -> None:
    from tests.gateway.ops.test_k8s import pod

    def env(fields: dict[str, Any]) -> dict[str, str]:
        sidecar = pod(manifests(spec(fields), Options()))["containers"][1]
        return {e["name"]: e["value"] for e in sidecar.get("env", [])}

    assert env(QUEUED)["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "1024"  # TANDEM_ASYNC_MAX_BYTES: 1 GiB
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB" not in env(REALTIME)
    own = {
        **QUEUED,
        "containers": [
            {
                "image": "registry.example.com/model:1.0",
                "environment": {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "64"},
            }
        ],
    }
    assert env(own)["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "64"  # the spec's own value wins
