"""``tandem k8s``: every manifest valid for Kubernetes (offline schemas), the pod wired together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.lifecycle.backends.external import ExternalBackend
from gateway.live import Instance
from gateway.ops.k8s import (
    FIRST_SIDECAR_PORT,
    GATEWAY_PORT,
    INVOCATIONS_METRIC,
    KUBERNETES_VERSION,
    STATE_DIR,
    K8sError,
    Options,
    manifests,
)
from gateway.ops.k8s_files import render_files
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec, load_specs, parse_size
from tests.support import ROOT

kubernetes_validate = pytest.importorskip("kubernetes_validate")

EXAMPLES = [
    ROOT / "pipelines" / "examples" / "churn.yaml",
    ROOT / "pipelines" / "examples" / "zoo.yaml",
]
#: How deploy/k8s was written; the test below renders it again the same way.
DEPLOY_ARGS = "pipelines/examples/churn.yaml pipelines/examples/zoo.yaml -o deploy/k8s"
DEPLOY = ROOT / "deploy" / "k8s"


def spec(**fields: Any) -> EndpointSpec:
    return EndpointSpec.model_validate({"source": Path("/srv/specs"), **fields})


MIXED = spec(
    name="houses",
    execution="Direct",
    containers=[
        {
            "hostname": "Store",
            "framework": "sklearn",
            "mode": "MultiModel",
            "model_data": "./store",
            "memory_limit": "300MiB",
        },
        {
            "hostname": "cloud",
            "framework": "sklearn",
            "mode": "MultiModel",
            "model_data": "s3://b/p/",
        },
        {"hostname": "single", "framework": "pytorch", "model_data": "./single.tar.gz"},
        {"hostname": "custom", "image": "registry.example.com/custom:1.0"},
    ],
)


def validate(obj: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(map(str, exc.path))
        where = f"{obj['kind']} {obj['metadata']['name']}: {path}"
        raise AssertionError(f"{where}: {exc.message}") from exc


def pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(objects["deployment.yaml"]["spec"]["template"]["spec"])


@pytest.mark.parametrize("endpoint", [*load_specs(EXAMPLES), MIXED], ids=lambda s: s.name)
def test_every_manifest_is_valid_kubernetes(endpoint: EndpointSpec) -> None:
    objects = manifests(endpoint, Options())
    kinds = {o["kind"] for o in objects.values()}
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= kinds
    assert "HorizontalPodAutoscaler" in kinds
    for obj in objects.values():
        validate(obj)


def test_a_broken_manifest_is_caught() -> None:
    deployment = manifests(MIXED, Options())["deployment.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "x"}]
    with pytest.raises(AssertionError, match="containerPort"):
        validate(deployment)


def test_the_pod_holds_the_gateway_and_one_sidecar_per_container() -> None:
    objects = manifests(MIXED, Options(registry="registry.example.com/ml/"))
    containers = pod(objects)["containers"]
    assert [c["name"] for c in containers] == ["gateway", "store", "cloud", "single", "custom"]
    gateway, *sidecars = containers
    assert gateway["image"].startswith("registry.example.com/ml/tandem-gateway:")
    assert sidecars[-1]["image"] == "registry.example.com/custom:1.0"  # its own, as given
    ports = [c["ports"][0]["containerPort"] for c in containers]
    assert ports == [GATEWAY_PORT, *range(FIRST_SIDECAR_PORT, FIRST_SIDECAR_PORT + 4)]
    for sidecar, port in zip(sidecars, ports[1:], strict=True):
        env = {e["name"]: e["value"] for e in sidecar["env"]}
        assert env["SAGEMAKER_BIND_TO_PORT"] == str(port)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert sidecar[probe]["httpGet"] == {"path": "/ping", "port": port}
        assert {"requests", "limits"} <= set(sidecar["resources"])
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}


def test_the_gateway_reaches_each_sidecar_at_its_port_in_the_pod() -> None:
    """The spec in the ConfigMap, read by the real external backend, names each sidecar's port."""
    objects = manifests(MIXED, Options())
    (text,) = objects["configmap.yaml"]["data"].values()
    served = EndpointSpec.model_validate(yaml.safe_load(text))
    env = {e["name"]: e["value"] for e in pod(objects)["containers"][0]["env"]}
    backend = ExternalBackend(
        GatewaySettings(backend="external", external_url=env["TANDEM_EXTERNAL_URL"])
    )
    runtime = Instance.from_spec(served)
    urls = [backend.url(c) for c in runtime.containers]
    assert urls == [f"http://127.0.0.1:{FIRST_SIDECAR_PORT + i}" for i in range(4)]


def test_model_data_comes_from_the_volume_or_through_the_gateway() -> None:
    objects = manifests(MIXED, Options())
    (text,) = objects["configmap.yaml"]["data"].values()
    served = yaml.safe_load(text)["containers"]
    store, cloud, single, _custom = served
    assert store["model_data"] == "/opt/ml/store/houses/Store"  # folder prefix: on the volume
    assert cloud["model_data"] == "s3://b/p/"  # the gateway fetches it
    assert "model_data" not in single  # the sidecar mounts it
    assert parse_size(store["memory_limit"]) == 300 * 2**20
    spec_pod = pod(objects)
    gateway, store_c, cloud_c, single_c, custom_c = spec_pod["containers"]
    # The gateway hands models over by path: MultiModel sidecars see its cache where it does.
    for c in (gateway, store_c, cloud_c):
        assert any(m["name"] == "state" and m["mountPath"] == STATE_DIR for m in c["volumeMounts"])
    (mount,) = single_c["volumeMounts"]
    assert mount == {
        "name": "models",
        "mountPath": "/opt/ml/model",
        "subPath": "houses/single",
        "readOnly": True,
    }
    assert "volumeMounts" not in custom_c
    limit = store_c["resources"]["limits"]["memory"]
    assert limit == "812Mi"  # the models' 300 MiB, plus the server's own
    claim = objects["pvc.yaml"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_autoscaler_follows_invocations_per_instance() -> None:
    objects = manifests(MIXED, Options(min_replicas=3, max_replicas=7, target_invocations=120))
    hpa = objects["hpa.yaml"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 7)
    (metric,) = hpa["metrics"]
    assert metric["pods"]["metric"]["name"] == INVOCATIONS_METRIC
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "120"}
    assert "replicas" not in objects["deployment.yaml"]["spec"]  # the HPA owns the count
    labels = objects["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    assert objects["pdb.yaml"]["spec"]["selector"]["matchLabels"] == labels
    assert objects["service.yaml"]["spec"]["selector"] == labels


def test_specs_that_cannot_run_in_a_pod_are_refused() -> None:
    with pytest.raises(K8sError, match="x/local: Kubernetes runs images"):
        manifests(spec(name="x", containers=[{"hostname": "local", "command": ["srv"]}]), Options())
    with pytest.raises(K8sError, match="'gateway' is taken"):
        manifests(spec(name="x", containers=[{"hostname": "gateway", "image": "i"}]), Options())
    with pytest.raises(K8sError, match="name the endpoint 'houses'"):
        manifests(spec(name="Houses", containers=[{"image": "i"}]), Options())
    with pytest.raises(K8sError, match="replicas"):
        Options(min_replicas=5, max_replicas=2)


def test_committed_kustomize_bases_match_a_fresh_render() -> None:
    files = render_files(load_specs(EXAMPLES), Options(), args=DEPLOY_ARGS)
    committed = {str(p.relative_to(DEPLOY)): p.read_text() for p in DEPLOY.rglob("*.yaml")}
    assert set(committed) == set(files), "run: tandem k8s " + DEPLOY_ARGS
    stale = [name for name, text in files.items() if committed[name] != text]
    assert not stale, f"{stale} drifted; run: tandem k8s {DEPLOY_ARGS}"
    for name, text in files.items():
        data = yaml.safe_load(text)
        if name.endswith("kustomization.yaml"):
            folder = DEPLOY / Path(name).parent
            assert all((folder / r).is_file() for r in data["resources"])


def test_cli_writes_bases_and_unpacks_the_model_volume(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00" * 100)
    spec_file = tmp_path / "one.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {"name": "one", "containers": [{"framework": "sklearn", "model_data": "./model"}]}
        )
    )
    out, volume = tmp_path / "out", tmp_path / "volume"
    args = ["k8s", str(spec_file), "-o", str(out), "--unpack-models", str(volume)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (volume / "one" / "container-1" / "weights.bin").read_bytes() == b"\x00" * 100
    for path in (out / "one").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if data["kind"] != "Kustomization":
            validate(data)

    streamed = CliRunner().invoke(app, ["k8s", str(spec_file)])
    assert streamed.exit_code == 0, streamed.output
    docs = [d for d in yaml.safe_load_all(streamed.stdout) if d]
    kinds = ["ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "PodDisruptionBudget"]
    assert [d["kind"] for d in docs] == [*kinds, "HorizontalPodAutoscaler"]
    for doc in docs:
        validate(doc)


def test_cli_names_what_is_wrong(tmp_path: Path) -> None:
    spec_file = tmp_path / "local.yaml"
    spec_file.write_text(yaml.safe_dump({"name": "local", "containers": [{"command": ["srv"]}]}))
    result = CliRunner().invoke(app, ["k8s", str(spec_file)])
    assert result.exit_code == 2
    assert "local/container-1: Kubernetes runs images" in result.output
