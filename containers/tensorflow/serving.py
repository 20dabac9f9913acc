"""TF-Serving's REST shapes, without TensorFlow: parse requests into arrays, format predictions.

Row format ``{"instances": [...]}`` answers ``{"predictions": [...]}``; columnar format
``{"inputs": ...}`` answers ``{"outputs": ...}``; a bare JSON list is row format. Each instance is a
value (one input) or an object naming the model's inputs. JSON lines carry one instance per line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from containers import codecs
from containers.errors import BadInput, UnsupportedAccept

#: One array for a single-input model, or arrays by input name.
Tensors = np.ndarray | dict[str, np.ndarray]


@dataclass(frozen=True)
class TFRequest:
    """What the default ``input_fn`` hands the default ``predict_fn``."""

    inputs: Tensors
    #: ``{"inputs": ...}`` was sent, so the answer is ``{"outputs": ...}``.
    columnar: bool = False
    signature_name: str | None = None


@dataclass(frozen=True)
class TFResponse:
    """What the default ``predict_fn`` hands the default ``output_fn``."""

    outputs: Tensors
    columnar: bool = False


def _array(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise BadInput(f"{what} is not a rectangular array: {exc}") from exc
    if array.dtype == object:
        raise BadInput(f"{what} mixes types or nests objects; send numbers or strings")
    return array


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadInput(f'{what}: "b64" must be a base64 string')
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise BadInput(f"{what}: bad base64: {exc}") from exc


def instances_to_tensors(instances: list[Any]) -> Tensors:
    """Stack row-format instances into a batch (by input name when instances are objects)."""
    if not instances:
        raise BadInput("no instances: send at least one")
    first = instances[0]
    if isinstance(first, Mapping) and set(first) != {"b64"}:
        names = list(first)
        for index, instance in enumerate(instances):
            if not isinstance(instance, Mapping) or list(instance) != names:
                raise BadInput(
                    f"instance {index} does not name the same inputs as instance 0 "
                    f"({', '.join(names)})"
                )
        return {
            name: _array([_unwrap(i[name], name) for i in instances], f"input {name!r}")
            for name in names
        }
    return _array([_unwrap(i, "instances") for i in instances], "instances")


def _unwrap(value: Any, what: str) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"b64"}:
            return _b64(value["b64"], what)
        raise BadInput(f"{what}: objects are allowed only as instances naming inputs")
    return value


def _columns(value: Any) -> Tensors:
    if isinstance(value, Mapping) and set(value) != {"b64"}:
        if not value:
            raise BadInput('"inputs" names no inputs')
        return {
            str(name): _array(_unwrap_nested(v, str(name)), f"input {name!r}")
            for name, v in value.items()
        }
    return _array(_unwrap_nested(value, "inputs"), "inputs")


def _unwrap_nested(value: Any, what: str) -> Any:
    if isinstance(value, list):
        return [_unwrap_nested(v, what) for v in value]
    return _unwrap(value, what)


def parse_json(body: bytes) -> TFRequest:
    """Parse a TF-Serving predict request (or a bare list of instances)."""
    document = codecs.decode_json(body)
    if isinstance(document, list):
        return TFRequest(instances_to_tensors(document))
    if not isinstance(document, dict):
        raise BadInput('JSON body must be {"instances": [...]}, {"inputs": ...} or a list')
    signature = document.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        raise BadInput('"signature_name" must be a string')
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows == has_columns:
        raise BadInput('JSON body needs exactly one of "instances" or "inputs"')
    if has_rows:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise BadInput('"instances" must be a list')
        return TFRequest(instances_to_tensors(instances), signature_name=signature)
    return TFRequest(_columns(document["inputs"]), columnar=True, signature_name=signature)


def parse_jsonlines(body: bytes) -> TFRequest:
    """One instance per non-blank line."""
    return TFRequest(instances_to_tensors(codecs.decode_jsonlines(body)))


def _jsonable(value: Any) -> Any:
    """``tolist`` plus bytes: UTF-8 text where possible, else TF-Serving's ``{"b64": ...}``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OS":
            return [_jsonable(v) for v in value] if value.ndim else _jsonable(value.item())
        return value.tolist()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def rows(outputs: Tensors) -> list[Any]:
    """Row format: one entry per instance; an object per instance when there are several outputs."""
    if not isinstance(outputs, dict):
        return list(_jsonable(np.asarray(outputs))) if np.ndim(outputs) else [_jsonable(outputs)]
    if len(outputs) == 1:
        return rows(next(iter(outputs.values())))
    columns = {name: rows(value) for name, value in outputs.items()}
    sizes = {len(column) for column in columns.values()}
    if len(sizes) != 1:
        raise BadInput(
            'outputs have different batch sizes; ask for columnar format ({"inputs": ...}) instead'
        )
    return [{name: column[i] for name, column in columns.items()} for i in range(sizes.pop())]


def as_response(prediction: Any) -> TFResponse:
    """Accept what a user's ``predict_fn`` may return: a TFResponse, arrays, or a dict of arrays."""
    if isinstance(prediction, TFResponse):
        return prediction
    if isinstance(prediction, Mapping):
        return TFResponse({str(k): np.asarray(v) for k, v in prediction.items()})
    return TFResponse(np.asarray(prediction))


def to_json(response: TFResponse) -> bytes:
    if response.columnar:
        outputs = response.outputs
        if isinstance(outputs, dict) and len(outputs) == 1:  # TF Serving omits a lone name
            outputs = next(iter(outputs.values()))
        value = (
            {name: _jsonable(v) for name, v in outputs.items()}
            if isinstance(outputs, dict)
            else _jsonable(outputs)
        )
        return json.dumps({"outputs": value}).encode()
    return json.dumps({"predictions": rows(response.outputs)}).encode()


def to_jsonlines(response: TFResponse) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows(response.outputs))


def single_output(response: TFResponse, accept: str) -> np.ndarray:
    """CSV and ``.npy`` carry one array; a model with several outputs must answer in JSON."""
    outputs = response.outputs
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise UnsupportedAccept(
                f"{accept} holds one array but the model returned "
                f"{len(outputs)} outputs ({', '.join(outputs)}); "
                "ask for application/json or application/jsonlines"
            )
        outputs = next(iter(outputs.values()))
    return outputs
