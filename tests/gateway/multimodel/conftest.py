"""What the MultiModel tests share: a model manager over a scripted model API, and a real
``tandem serve`` of scikit-learn MultiModel endpoints with the models it should answer with.

scikit-learn is imported only where a gateway is served (``stores.py``), so the tests that need
none (cache, store, targets) collect without it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from gateway.live import ContainerRuntime, Instance
from gateway.metrics import GatewayMetrics
from gateway.multimodel.cache import DiskCache
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.model_store import ModelStore
from gateway.multimodel.targets import container_name
from gateway.upstream import UpstreamResponse
from pipelines.spec import EndpointSpec
from tests.gateway.multimodel import archives

GIB = 2**30


class FakeModelApi:
    """``POST /models`` answers from a script per target (then 200); every call is recorded."""

    base_url = "http://fake-container"

    def __init__(self, scripts: dict[str, list[int]]) -> None:
        self.calls: list[tuple[str, str]] = []
        self._scripts = {container_name(t): list(s) for t, s in scripts.items()}

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], *, timeout: float, max_body: int
    ) -> UpstreamResponse:
        assert path == "/models"
        name = json.loads(body)["model_name"]
        self.calls.append(("POST", name))
        script = self._scripts.get(name)
        status = script.pop(0) if script else 200
        return UpstreamResponse(status, {}, b"out of memory" if status == 507 else b"loaded")

    async def get(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        raise AssertionError(f"unexpected GET {path}")

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        self.calls.append(("DELETE", unquote(path.removeprefix("/models/"))))
        return UpstreamResponse(200, {}, b"")

    async def aclose(self) -> None:
        pass


@dataclass
class Managed:
    """A real ``ModelManager`` over a real folder store and disk cache; its container's API
    is ``api``, its series are ``metrics``'."""

    manager: ModelManager
    api: FakeModelApi
    metrics: GatewayMetrics
    endpoint: Instance
    container: ContainerRuntime


def make_manager(
    folder: Path,
    targets: Sequence[str],
    *,
    endpoint: str = "houses",
    scripts: dict[str, list[int]] | None = None,
    preload: Sequence[str] = (),
    cloudwatch: Any = None,
    api: FakeModelApi | None = None,
    **options: Any,
) -> Managed:
    """A manager of one MultiModel container (``multi``) of ``endpoint`` over a store of
    ``targets`` (small archives in ``folder/store``), a GiB of memory; ``api`` answers for its
    container (a ``FakeModelApi`` of ``scripts`` by default); ``options`` go to ``ModelManager``
    (``eviction=...``)."""
    store = folder / "store"
    for target in targets:
        archives.write_tar(store / target, {"model.joblib": b"m" * 100})
    fields: dict[str, Any] = {
        "hostname": "multi",
        "command": ["unused"],
        "mode": "MultiModel",
        "model_data": str(store),
    }
    if preload:
        fields["preload"] = list(preload)
    spec = EndpointSpec.model_validate({"name": endpoint, "containers": [fields]})
    instance = Instance.from_spec(spec)
    (container,) = instance.containers
    metrics = GatewayMetrics([instance])
    metrics.cloudwatch = cloudwatch
    cache = DiskCache(folder / "cache", limit=GIB, max_model_bytes=2**20)
    cache.reset()
    api = api or FakeModelApi(scripts or {})
    manager = ModelManager(
        container,
        store=ModelStore(str(store)),
        cache=cache,
        upstream=lambda: api,
        metrics=metrics.models(instance, container),
        memory_limit=GIB,
        **options,
    )
    return Managed(manager, api, metrics, instance, container)


def sklearn_multi(model_data: str, environment: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A scikit-learn MultiModel container's spec fields."""
    return {
        "framework": "sklearn",
        "mode": "MultiModel",
        "model_data": model_data,
        "environment": environment,
        **fields,
    }


def big_store(folder: Path, targets: Sequence[str], megabytes: int = 40) -> Any:
    """``targets`` in ``folder``: copies of one big model (each load takes its memory anew);
    the model."""
    from tests.gateway.multimodel.stores import big_model, pack

    model = big_model(megabytes)
    pack(folder / targets[0], model, mode="w")
    for target in targets[1:]:
        shutil.copy(folder / targets[0], folder / target)
    return model


@dataclass
class Site:
    """A gateway serving MultiModel endpoints, and what its models should answer to ``x``."""

    url: str
    root: Path
    models: dict[str, Any]
    client: Any
    x: Any
    #: The models' method the containers answer with (``TANDEM_SKLEARN_METHOD``).
    method: str = "predict_proba"
    log: Path | None = None

    @property
    def marks(self) -> Path:
        """Where the tests' model code leaves its marks (``root/marks``)."""
        return self.root / "marks"

    def invoke_on(self, endpoint: str, target: str | None, **args: Any) -> Any:
        """InvokeEndpoint with ``x`` as CSV (and ``TargetModel`` when ``target``)."""
        from tests.gateway.multimodel.stores import csv_body

        if target is not None:
            args["TargetModel"] = target
        return self.client.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=csv_body(self.x), **args
        )

    def predict_on(self, endpoint: str, target: str | None, **args: Any) -> list[Any]:
        from tests.gateway.multimodel.stores import predictions

        return predictions(self.invoke_on(endpoint, target, **args)["Body"].read())

    def want(self, target: str) -> list[Any]:
        return list(getattr(self.models[target], self.method)(self.x).tolist())


S = TypeVar("S", bound=Site)


@contextmanager
def serve_site(
    kind: type[S],
    root: Path,
    specs: Sequence[Path],
    models: dict[str, Any],
    x: Any,
    *,
    env: dict[str, str] | None = None,
    method: str = "predict_proba",
) -> Iterator[S]:
    """``tandem serve`` of ``specs`` (``stores.gateway``) as a ``kind`` of site."""
    from tests.gateway.harness import sagemaker_client
    from tests.gateway.multimodel.stores import gateway

    with gateway(root, *specs, env=env) as (url, log):
        yield kind(url, root, models, sagemaker_client(url), x, method, log)
