"""An endpoint config's variants, data capture and async config <-> the spec, both ways.

``translate`` maps one model to one variant's containers; this module puts the variants
together: ``endpoint_spec`` turns a ``CreateEndpointConfig`` (with the model of each of its
variants) into the ``EndpointSpec`` the runtime serves, ``config_parts`` turns a spec back
into one ``CreateModel`` per variant and the ``CreateEndpointConfig``.

- ``InitialVariantWeight`` (default 1.0) and ``InitialInstanceCount`` are the spec's ``weight``
  and ``instance_count``.
- A shadow variant's share of the traffic is, as on SageMaker, its weight over the production
  variant's; the spec holds it as ``sampling_percentage`` (capped at 100).
- ``DataCaptureConfig`` is the spec's ``data_capture``, ``AsyncInferenceConfig`` its
  ``async_inference``; an ``http(s)://`` URL in ``NotificationConfig``'s topics is a webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from gateway.control.translate import from_spec, to_spec
from gateway.errors import ValidationException
from gateway.state import for_components
from pipelines.spec import (
    AsyncInferenceSpec,
    DataCaptureSpec,
    EndpointSpec,
    ShadowVariantSpec,
    VariantSpec,
)

ModelOf = Callable[[str], Mapping[str, Any]]


def endpoint_spec(name: str, config: Mapping[str, Any], model_of: ModelOf) -> EndpointSpec:
    """The spec ``name`` runs under ``config``; ``model_of(ModelName)`` is a CreateModel request.

    A config for inference components runs no containers of its own: its spec is a shell with
    none (the one spec that has none; ``gateway.lifecycle`` starts nothing for it)."""
    if for_components(config):
        first = config["ProductionVariants"][0]
        return EndpointSpec.model_construct(
            name=name, variant=first["VariantName"], instance_count=_count(first)
        )
    production = list(config.get("ProductionVariants") or [{}])
    shadows = list(config.get("ShadowProductionVariants") or [])
    singles = [_single(name, config, v, model_of) for v in production]
    found = {
        "data_capture": _capture(config.get("DataCaptureConfig")),
        "async_inference": _async(config.get("AsyncInferenceConfig")),
    }
    extra = {k: v for k, v in found.items() if v is not None}
    if len(singles) == 1 and not shadows:
        (variant,) = production
        return singles[0].model_copy(
            update={**extra, "weight": _weight(variant), "instance_count": _count(variant)}
        )
    total = sum(_weight(v) for v in production)
    raw: dict[str, Any] = {
        "name": name,
        "source": singles[0].source,
        "variants": [
            VariantSpec(
                name=s.variant,
                execution=s.execution,
                containers=s.containers,
                weight=_weight(v),
                instance_count=_count(v),
                **_routing(s),
            )
            for s, v in zip(singles, production, strict=True)
        ],
        "shadow_variants": [
            ShadowVariantSpec(
                name=s.variant,
                execution=s.execution,
                containers=s.containers,
                instance_count=_count(v),
                **_routing(s),
                sampling_percentage=min(100.0, 100.0 * _weight(v) / total) if total else 0.0,
            )
            for v in shadows
            for s in [_single(name, config, v, model_of)]
        ],
        **extra,
    }
    if "timeout" in singles[0].model_fields_set:
        raw["timeout"] = singles[0].timeout
    try:
        return EndpointSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ValidationException(
            f'Endpoint configuration "{config.get("EndpointConfigName", name)}" cannot run: '
            f"productionVariants: {problems}"
        ) from exc


def config_parts(spec: EndpointSpec) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """A ``CreateModel`` request per variant (by variant name) and the ``CreateEndpointConfig``
    (its variants' ``ModelName`` are the variant names: the caller names the models)."""
    models: dict[str, dict[str, Any]] = {}
    config: dict[str, Any] = {"EndpointConfigName": spec.name, "ProductionVariants": []}
    production = spec.production()
    total = sum(v.weight for v in production)
    for one in production:
        model, single = from_spec(one)
        models[one.variant] = model
        variant = single["ProductionVariants"][0]
        variant.update(ModelName=one.variant, InitialInstanceCount=one.instance_count)
        if "weight" in one.model_fields_set or spec.variants:
            variant["InitialVariantWeight"] = one.weight
        config["ProductionVariants"].append(variant)
        if "Tags" in single:
            config["Tags"] = single["Tags"]
    for one, sampling in spec.shadows():
        model, _ = from_spec(one)
        models[one.variant] = model
        config.setdefault("ShadowProductionVariants", []).append(
            {
                "VariantName": one.variant,
                "ModelName": one.variant,
                "InitialInstanceCount": one.instance_count,
                "InitialVariantWeight": total * sampling / 100.0,
            }
        )
    if spec.data_capture is not None:
        config["DataCaptureConfig"] = _capture_config(spec, spec.data_capture)
    if spec.async_inference is not None:
        config["AsyncInferenceConfig"] = _async_config(spec, spec.async_inference)
    return models, config


def _single(
    name: str, config: Mapping[str, Any], variant: Mapping[str, Any], model_of: ModelOf
) -> EndpointSpec:
    one = {k: v for k, v in config.items() if k in ("EndpointConfigName", "Tags")}
    return to_spec(name, model_of(variant["ModelName"]), {**one, "ProductionVariants": [variant]})


def _routing(single: EndpointSpec) -> dict[str, Any]:
    """The variant's ``RoutingConfig``, only if it had one (so an export writes what was given)."""
    return {k: single.routing_strategy for k in single.model_fields_set & {"routing_strategy"}}


def _weight(variant: Mapping[str, Any]) -> float:
    return float(variant.get("InitialVariantWeight", 1.0))


def _count(variant: Mapping[str, Any]) -> int:
    return int(variant.get("InitialInstanceCount", 1))


def _capture(config: Mapping[str, Any] | None) -> DataCaptureSpec | None:
    if not config:
        return None
    header = config.get("CaptureContentTypeHeader") or {}
    raw: dict[str, Any] = {
        "enable_capture": config.get("EnableCapture", True),
        "initial_sampling_percentage": config.get("InitialSamplingPercentage", 100),
        "destination": config.get("DestinationS3Uri", ""),
        "capture_options": [o.get("CaptureMode") for o in config.get("CaptureOptions", [])],
    }
    # As on SageMaker: without CaptureContentTypeHeader everything is captured BASE64.
    raw["csv_content_types"] = header.get("CsvContentTypes", [])
    raw["json_content_types"] = header.get("JsonContentTypes", [])
    return _validated(DataCaptureSpec, raw, "dataCaptureConfig")


def _async(config: Mapping[str, Any] | None) -> AsyncInferenceSpec | None:
    if not config:
        return None
    output = config.get("OutputConfig") or {}
    notify = output.get("NotificationConfig") or {}
    raw: dict[str, Any] = {"output_path": output.get("S3OutputPath", "")}
    if output.get("S3FailurePath"):
        raw["failure_path"] = output["S3FailurePath"]
    client = config.get("ClientConfig") or {}
    if "MaxConcurrentInvocationsPerInstance" in client:
        raw["max_concurrent_invocations_per_instance"] = client[
            "MaxConcurrentInvocationsPerInstance"
        ]
    for topic, field in (("SuccessTopic", "success_webhook"), ("ErrorTopic", "error_webhook")):
        value = notify.get(topic)
        if value is None:
            continue
        if not str(value).startswith(("http://", "https://")):
            raise ValidationException(
                f"asyncInferenceConfig.outputConfig.notificationConfig.{topic[0].lower()}"
                f"{topic[1:]}: {value!r}: Tandem notifies http:// or https:// webhooks; SNS "
                "topics are not supported."
            )
        raw[field] = value
    return _validated(AsyncInferenceSpec, raw, "asyncInferenceConfig")


def _validated(model: Any, raw: dict[str, Any], member: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationException(f"{member}: {problems}") from exc


def _capture_config(spec: EndpointSpec, capture: DataCaptureSpec) -> dict[str, Any]:
    return {
        "EnableCapture": capture.enable_capture,
        "InitialSamplingPercentage": capture.initial_sampling_percentage,
        "DestinationS3Uri": spec.resolve(capture.destination),
        "CaptureOptions": [{"CaptureMode": m.value} for m in capture.capture_options],
        "CaptureContentTypeHeader": {
            **({"CsvContentTypes": capture.csv_content_types} if capture.csv_content_types else {}),
            **(
                {"JsonContentTypes": capture.json_content_types}
                if capture.json_content_types
                else {}
            ),
        },
    }


def _async_config(spec: EndpointSpec, config: AsyncInferenceSpec) -> dict[str, Any]:
    output: dict[str, Any] = {"S3OutputPath": spec.resolve(config.output_path)}
    if config.failure_path is not None:
        output["S3FailurePath"] = spec.resolve(config.failure_path)
    notify = {
        topic: url
        for topic, url in (
            ("SuccessTopic", config.success_webhook),
            ("ErrorTopic", config.error_webhook),
        )
        if url is not None
    }
    if notify:
        output["NotificationConfig"] = notify
    return {
        "OutputConfig": output,
        "ClientConfig": {
            "MaxConcurrentInvocationsPerInstance": config.max_concurrent_invocations_per_instance
        },
    }
