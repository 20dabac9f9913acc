"""The one mapping between SageMaker's objects (model + endpoint config) and Tandem's spec.

``to_spec`` turns a ``CreateModel`` and a ``CreateEndpointConfig`` request into the
``EndpointSpec`` that the rest of Tandem runs, and ``from_spec`` turns a spec file back into the
two requests (``tandem serve spec.yaml`` creates its endpoints through them; ``tandem export``
writes a spec from them). The spec's own validation (``pipelines.spec``) is the one set of rules;
its complaints come back as ``ValidationException`` naming SageMaker's fields.

What ``Image`` means:

- ``sklearn``, ``pytorch``, ``tensorflow``: Tandem's built-in framework containers.
- SageMaker's framework images, matched on the repository name whatever the registry and tag:
  ``sagemaker-scikit-learn`` -> sklearn, ``pytorch-inference`` -> pytorch,
  ``tensorflow-inference`` -> tensorflow. So ``.../sagemaker-scikit-learn:1.2-1-cpu-py3`` with a
  ``model.tar.gz`` holding ``code/inference.py`` runs unchanged.
- Any other image: that image, under the docker backend (the spec's ``image``).
- A command instead of an image (the process backend): the environment variable
  ``TANDEM_COMMAND`` holds the command line (split like a shell would, ``shlex``); ``Image`` may
  then be left out, or name the image the same server runs from under docker. SageMaker's
  ``Image`` pattern allows no spaces, which is why the command is not an image URI.

Tandem's fields that SageMaker lacks travel in reserved names, removed from what the container
sees: a MultiModel container's ``TANDEM_MEMORY_LIMIT``, ``TANDEM_DISK_CACHE_LIMIT``,
``TANDEM_PRELOAD`` (comma list) and ``TANDEM_LOAD_WAIT_TIMEOUT`` environment variables (its
``MultiModelConfig.ModelCacheSetting`` is SageMaker's own), a container's ``batching`` as
``TANDEM_MAX_BATCH_SIZE`` and ``TANDEM_MAX_BATCH_DELAY_MS``, and the endpoint's request deadline
as the endpoint config's tag ``tandem:timeout`` (seconds). A variant's
``RoutingConfig.RoutingStrategy`` is the spec's ``routing_strategy`` (``PREFIX_AWARE``, for
language models, is refused).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from gateway.container_env import SUBMIT_ENV
from gateway.control.shapes import member_path
from gateway.errors import ValidationException
from pipelines.spec import EndpointSpec, Execution, Framework, Mode, ModelCache

COMMAND_ENV = "TANDEM_COMMAND"
#: Reserved environment variables -> the MultiModel spec fields they carry.
MULTI_MODEL_ENV = {
    "TANDEM_MEMORY_LIMIT": "memory_limit",
    "TANDEM_DISK_CACHE_LIMIT": "disk_cache_limit",
    "TANDEM_PRELOAD": "preload",
    "TANDEM_LOAD_WAIT_TIMEOUT": "load_wait_timeout",
}
#: A container's ``batching`` travels as the variables the built-in containers read themselves.
BATCHING_ENV = {
    "TANDEM_MAX_BATCH_SIZE": "max_batch_size",
    "TANDEM_MAX_BATCH_DELAY_MS": "max_batch_delay_ms",
}
TIMEOUT_TAG = "tandem:timeout"
#: The model tag that keeps a spec file's folder: its ``command`` runs there, as from the file.
SOURCE_TAG = "tandem:source"
#: SageMaker framework image repositories that Tandem's built-in containers stand in for.
SAGEMAKER_REPOSITORIES = {
    "sagemaker-scikit-learn": Framework.SKLEARN,
    "pytorch-inference": Framework.PYTORCH,
    "tensorflow-inference": Framework.TENSORFLOW,
}
DEFAULT_VARIANT = "AllTraffic"
#: Spec field -> the SageMaker member (or reserved name) it comes from, for error messages.
_FIELDS = {
    "hostname": "ContainerHostname",
    "framework": "Image",
    "image": "Image",
    "command": f"Environment.{COMMAND_ENV}",
    "mode": "Mode",
    "model_data": "ModelDataUrl",
    "environment": "Environment",
    "model_cache": "MultiModelConfig.ModelCacheSetting",
    **{field: f"Environment.{env}" for env, field in MULTI_MODEL_ENV.items()},
}
_WORDS = [
    (r"\bmodel_data\b", "ModelDataUrl"),
    (r"\bhostnames\b", "ContainerHostnames"),
    (r"\bhostname\b", "ContainerHostname"),
    (r"\bframework, command or image\b", f"Image (or a {COMMAND_ENV} environment variable)"),
    (r"\bframework and command\b", f"a built-in framework Image and {COMMAND_ENV}"),
    *[(rf"\b{field}\b", env) for env, field in MULTI_MODEL_ENV.items()],
]


def framework_of(image: str) -> Framework | None:
    """The built-in framework an ``Image`` names, or ``None`` for any other image."""
    if image in Framework._value2member_map_:
        return Framework(image)
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return SAGEMAKER_REPOSITORIES.get(repository)


def containers_of(model: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """The model's container definitions, each with the member path it came from."""
    if "Containers" in model:
        return [(("Containers", i), dict(c)) for i, c in enumerate(model["Containers"])]
    if "PrimaryContainer" in model:
        return [(("PrimaryContainer",), dict(model["PrimaryContainer"]))]
    return []


def model_data_of(container: Mapping[str, Any]) -> str | None:
    """``ModelDataUrl``, or the URI of a ``ModelDataSource.S3DataSource``."""
    source = container.get("ModelDataSource", {}).get("S3DataSource", {})
    url: str | None = container.get("ModelDataUrl") or source.get("S3Uri")
    return url


def source_of(model: Mapping[str, Any]) -> Path | None:
    """The folder of the spec file a ``CreateModel`` request came from, if it came from one."""
    for tag in model.get("Tags", []):
        if tag.get("Key") == SOURCE_TAG and tag.get("Value"):
            return Path(tag["Value"])
    return None


def to_spec(
    endpoint_name: str,
    model: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    *,
    source: Path | None = None,
) -> EndpointSpec:
    """The spec that runs ``model`` (a ``CreateModel`` request) under ``config`` (a
    ``CreateEndpointConfig`` request; ``None`` checks the model alone)."""
    variant = (config or {}).get("ProductionVariants", [{}])[0]
    raw: dict[str, Any] = {
        "name": endpoint_name,
        "variant": variant.get("VariantName", DEFAULT_VARIANT),
        "containers": [_container(path, c) for path, c in containers_of(model)],
        "source": source if source is not None else source_of(model),
    }
    strategy = variant.get("RoutingConfig", {}).get("RoutingStrategy")
    if strategy is not None:
        raw["routing_strategy"] = strategy
    mode = model.get("InferenceExecutionConfig", {}).get("Mode")
    if mode is not None:
        raw["execution"] = mode
    tags = {t["Key"]: t["Value"] for t in (config or {}).get("Tags", [])}
    if TIMEOUT_TAG in tags:
        raw["timeout"] = tags[TIMEOUT_TAG]
    try:
        return EndpointSpec.model_validate(raw)
    except ValidationError as exc:
        where = "Containers" if "Containers" in model else "PrimaryContainer"
        problems = [_problem(err, where) for err in exc.errors()]
        what = f'model "{model.get("ModelName", endpoint_name)}"'
        if config is not None and "EndpointConfigName" in config:
            what = f'Endpoint configuration "{config["EndpointConfigName"]}" with {what}'
        what = what[0].upper() + what[1:]
        raise ValidationException(f"{what} cannot run: " + "; ".join(problems)) from exc


def from_spec(spec: EndpointSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``CreateModel`` and ``CreateEndpointConfig`` requests for ``spec`` (both named after
    the endpoint; model data paths made absolute against the spec's folder)."""
    containers = [_definition(spec, c) for c in spec.containers]
    model: dict[str, Any] = {"ModelName": spec.name}
    if len(containers) == 1 and spec.execution is Execution.SERIAL:
        model["PrimaryContainer"] = containers[0]
    else:
        model["Containers"] = containers
        model["InferenceExecutionConfig"] = {"Mode": spec.execution.value}
    variant = {"VariantName": spec.variant, "ModelName": spec.name, "InitialInstanceCount": 1}
    if "routing_strategy" in spec.model_fields_set:
        variant["RoutingConfig"] = {"RoutingStrategy": spec.routing_strategy.value}
    config: dict[str, Any] = {"EndpointConfigName": spec.name, "ProductionVariants": [variant]}
    if "timeout" in spec.model_fields_set:
        config["Tags"] = [{"Key": TIMEOUT_TAG, "Value": f"{spec.timeout:g}"}]
    return model, config


def default_model_roots() -> tuple[str, ...]:
    """Where model data may come from when the operator says nothing: the current folder and
    any ``s3://`` location (never the state folder, even when it lies in the current one)."""
    return (str(Path.cwd()), "s3://")


def parse_model_roots(value: str | None) -> tuple[str, ...]:
    """``TANDEM_MODEL_ROOTS``: a comma list of folders and URL prefixes (``s3://`` for any S3,
    ``s3://bucket/prefix/`` for one); unset or empty means ``default_model_roots``."""
    roots = tuple(r.strip() for r in (value or "").split(",") if r.strip())
    return roots or default_model_roots()


def check_model_data(
    url: str,
    roots: Sequence[str | Path],
    *,
    member: str = "ModelDataUrl",
    exist: bool = True,
    forbidden: Sequence[str | Path] = (),
) -> str:
    """``url`` if it lies under one of ``roots``, else ``ValidationException`` naming it. A local
    path comes back absolute with symlinks resolved, and must exist unless ``exist`` is false (a
    job's output folder). No location may lie in a ``forbidden`` folder (the state folder),
    nor, when it is read (``exist``), hold one: a folder read whole would read it too."""
    if not url.strip():
        raise ValidationException(f"{member}: must not be empty")
    where = ", ".join(str(r) for r in roots) or "(none)"
    outside = ValidationException(
        f"{member} {url!r} is outside the model roots this gateway allows ({where}); the "
        "operator sets them with TANDEM_MODEL_ROOTS"
    )
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "gs"):
        raise ValidationException(
            f"{member} {url!r}: {parsed.scheme}:// is not supported yet; use s3://, file:// or a "
            "local path"
        )
    if parsed.scheme == "s3":
        for root in (str(r) for r in roots if str(r).startswith("s3:")):
            if url == root.rstrip("/") or url.startswith(root.rstrip("/") + "/"):
                return url
        raise outside
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValidationException(f"{member} {url!r}: a file:// URL must name a local path")
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ValidationException(
            f"{member} {url!r}: unknown URL scheme {parsed.scheme!r}; use s3://, file:// or a "
            "local path"
        )
    else:
        path = Path(url)
    real = (Path.cwd() / path.expanduser()).resolve()
    for allowed in roots:
        if "://" in str(allowed):
            continue
        base = (Path.cwd() / Path(allowed).expanduser()).resolve()
        if real == base or real.is_relative_to(base):
            _not_forbidden(real, forbidden, member, url, reading=exist)
            if exist and not real.exists():
                raise ValidationException(f"{member} {url!r}: could not find model data at {real}")
            return str(real)
    raise outside


def _not_forbidden(
    real: Path, forbidden: Sequence[str | Path], member: str, url: str, *, reading: bool
) -> None:
    for folder in forbidden:
        base = Path(folder).resolve()
        if real.is_relative_to(base) or (reading and base.is_relative_to(real)):
            raise ValidationException(
                f"{member} {url!r} {'is' if real.is_relative_to(base) else 'holds'} the "
                f"gateway's state folder ({base}), which no location may name"
            )


def _container(path: tuple[str | int, ...], definition: Mapping[str, Any]) -> dict[str, Any]:
    env = dict(definition.get("Environment", {}))
    fields: dict[str, Any] = {}
    command = env.pop(COMMAND_ENV, None)
    if command is not None:
        try:
            fields["command"] = shlex.split(command)
        except ValueError as exc:
            at = f"{member_path(*path, 'Environment')}.{COMMAND_ENV}"
            raise ValidationException(f"{at}: cannot split the command line: {exc}") from exc
    image = definition.get("Image")
    if image is not None:
        framework = framework_of(image)
        fields["framework" if framework else "image"] = framework.value if framework else image
    if definition.get("ContainerHostname"):
        fields["hostname"] = definition["ContainerHostname"]
    if "Mode" in definition:
        fields["mode"] = Mode(definition["Mode"]).value
    data = model_data_of(definition)
    if data is not None:
        fields["model_data"] = data
    cache = definition.get("MultiModelConfig", {}).get("ModelCacheSetting")
    if cache is not None:
        fields["model_cache"] = ModelCache(cache).value
    for name, field in MULTI_MODEL_ENV.items():
        if name in env:
            value = env.pop(name)
            preload = [p.strip() for p in value.split(",") if p.strip()]
            fields[field] = preload if field == "preload" else value
    batching = {field: env.pop(name) for name, field in BATCHING_ENV.items() if name in env}
    if batching:
        fields["batching"] = batching
    fields["environment"] = env
    return fields


def _definition(spec: EndpointSpec, container: Any) -> dict[str, Any]:
    env = dict(container.environment)
    out: dict[str, Any] = {}
    if container.hostname is not None:
        out["ContainerHostname"] = container.hostname
    if container.framework is not None:
        out["Image"] = container.framework.value
    elif container.image is not None:
        out["Image"] = container.image
    if container.command is not None:
        env[COMMAND_ENV] = shlex.join(container.command)
    submitted = env.get(SUBMIT_ENV, "")
    if submitted and spec.source is not None and "://" not in submitted:
        env[SUBMIT_ENV] = str(spec.source / submitted)  # like model_data: the spec's folder's
    if container.mode is Mode.MULTI_MODEL:
        out["Mode"] = Mode.MULTI_MODEL.value
    url = spec.model_data_url(container)
    if url is not None:
        out["ModelDataUrl"] = url
    for name, field in MULTI_MODEL_ENV.items():
        if field in container.model_fields_set:
            value = getattr(container, field)
            if field == "preload":
                env[name] = ",".join(value)
            elif field == "load_wait_timeout":
                env[name] = f"{value:g}"
            else:  # bytes, with the unit: a bare number would mean MiB
                env[name] = f"{value}B"
    if container.batching is not None:
        for name, field in BATCHING_ENV.items():
            env[name] = f"{getattr(container.batching, field):g}"
    if "model_cache" in container.model_fields_set:
        out["MultiModelConfig"] = {"ModelCacheSetting": container.model_cache.value}
    if env:
        out["Environment"] = env
    return out


def _problem(err: Any, where: str) -> str:
    """One spec complaint, located by SageMaker's member path."""
    loc = list(err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    for pattern, word in _WORDS:
        message = re.sub(pattern, word, message)
    if len(loc) >= 2 and loc[0] == "containers" and isinstance(loc[1], int):
        base: list[str | int] = [where] if where == "PrimaryContainer" else [where, loc[1]]
        if len(loc) == 2:
            return f"{member_path(*base)}: {message}"
        member, _, key = _FIELDS.get(str(loc[2]), str(loc[2])).partition(".")
        path = member_path(*base, *member.split("."))
        return f"{path}{'.' + key if key else ''}: {message}"
    if not loc:  # the spec's whole-endpoint rules are all about its containers
        return f"{member_path(where)}: {message}"
    top = {
        "name": "endpointName",
        "variant": "productionVariants.1.member.variantName",
        "routing_strategy": "productionVariants.1.member.routingConfig.routingStrategy",
        "timeout": f"tags.{TIMEOUT_TAG}",
        "execution": "inferenceExecutionConfig.mode",
        "containers": member_path(where),
    }
    return f"{top.get(str(loc[0]), str(loc[0]))}: {message}"
