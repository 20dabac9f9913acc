"""Find and load a TensorFlow artifact; run it on numpy batches.

Everything runs in TF's one eager context, so every model in the process shares its thread pools:
no per-model sessions or graphs, which is what lets one process hold a thousand models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from containers.errors import BadInput, ModelLoadError
from containers.tensorflow.serving import Tensors

SERVING_SIGNATURE = "serving_default"
_VERSION = re.compile(r"^\d+$")


class TFModel(Protocol):
    """What the default ``predict_fn`` calls; also what a user's ``predict_fn`` receives."""

    path: Path

    def predict(self, inputs: Tensors, signature_name: str | None = None) -> Tensors: ...


def find_artifact(model_dir: Path) -> Path:
    """Highest numeric SavedModel version, else a SavedModel in the dir, else a Keras file."""
    if not model_dir.is_dir():
        raise ModelLoadError(f"model dir {model_dir} does not exist")
    versions = [
        p
        for p in model_dir.iterdir()
        if _VERSION.match(p.name) and (p / "saved_model.pb").is_file()
    ]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    if (model_dir / "saved_model.pb").is_file():
        return model_dir
    if (model_dir / "model.keras").is_file():
        return model_dir / "model.keras"
    files = sorted([*model_dir.glob("*.keras"), *model_dir.glob("*.h5")])
    if len(files) == 1:
        return files[0]
    if files:
        names = ", ".join(p.name for p in files)
        raise ModelLoadError(
            f"several Keras files in {model_dir} ({names}); keep one or name it model.keras"
        )
    raise ModelLoadError(
        f"no TensorFlow model in {model_dir}: expected a SavedModel (<dir>/1/saved_model.pb or "
        "<dir>/saved_model.pb) or a Keras file (model.keras or *.h5)"
    )


def load(model_dir: Path) -> TFModel:
    path = find_artifact(model_dir)
    if path.is_dir():
        return SavedModel(path)
    return KerasModel(path)


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _check_shape(array: np.ndarray, expected: Sequence[int | None] | None, name: str) -> None:
    """Refuse a wrong shape up front, with a message better than TF's graph error."""
    if expected is None:
        return
    if len(expected) != array.ndim or any(
        want is not None and want != got for want, got in zip(expected, array.shape, strict=False)
    ):
        shape = "(" + ", ".join("None" if d is None else str(d) for d in expected) + ")"
        raise BadInput(f"input {name!r} has shape {array.shape}; the model expects {shape}")


def _cast(array: np.ndarray, dtype: tf.DType, name: str) -> tf.Tensor:
    try:
        if dtype == tf.string:
            return tf.constant(array.astype(object) if array.dtype.kind == "U" else array)
        return tf.convert_to_tensor(array.astype(dtype.as_numpy_dtype, copy=False))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"input {name!r} cannot be read as {dtype.name}: {exc}") from exc


class SavedModel:
    """A SavedModel called through its own serving signature (what TF Serving calls)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise ModelLoadError(f"cannot load SavedModel {path}: {exc}") from exc
        if SERVING_SIGNATURE not in self._loaded.signatures:
            raise ModelLoadError(
                f"SavedModel {path} has no {SERVING_SIGNATURE!r} signature "
                f"(it has: {', '.join(self._loaded.signatures) or 'none'})"
            )

    def signature(self, name: str | None) -> Any:
        name = name or SERVING_SIGNATURE
        try:
            return self._loaded.signatures[name]
        except KeyError:
            known = ", ".join(self._loaded.signatures)
            raise BadInput(f"no signature {name!r} in this model (it has: {known})") from None

    def predict(self, inputs: Tensors, signature_name: str | None = None) -> Tensors:
        function = self.signature(signature_name)
        specs: Mapping[str, tf.TensorSpec] = function.structured_input_signature[1]
        if not isinstance(inputs, dict):
            if len(specs) != 1:
                raise BadInput(
                    f"this model takes {len(specs)} inputs ({', '.join(specs)}): send "
                    "instances as objects naming them"
                )
            inputs = {next(iter(specs)): inputs}
        if set(inputs) != set(specs):
            raise BadInput(f"inputs {sorted(inputs)} do not match the signature's {sorted(specs)}")
        tensors = {}
        for name, value in inputs.items():
            array, spec = np.asarray(value), specs[name]
            _check_shape(array, None if spec.shape.rank is None else spec.shape.as_list(), name)
            tensors[name] = _cast(array, spec.dtype, name)
        try:
            outputs = function(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise BadInput(f"model rejected the input: {_error_line(exc)}") from exc
        return {name: _numpy(value) for name, value in outputs.items()}


class KerasModel:
    """A ``.keras`` / ``.h5`` file, called directly (no ``Model.predict`` per-call overhead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"cannot load Keras model {path}: {exc}") from exc
        inputs = self.model.inputs or []
        self._inputs = {t.name: t.dtype for t in inputs}
        self._shapes = {t.name: tuple(t.shape) for t in inputs}

    def predict(self, inputs: Tensors, signature_name: str | None = None) -> Tensors:
        if signature_name not in (None, SERVING_SIGNATURE):
            raise BadInput(f"a Keras model has no signature {signature_name!r}")
        if isinstance(inputs, dict):
            unknown = set(inputs) - set(self._inputs)
            if unknown:
                raise BadInput(
                    f"unknown inputs {sorted(unknown)}; the model takes {sorted(self._inputs)}"
                )
            batch: Any = {name: self._convert(value, name) for name, value in inputs.items()}
        else:
            name = next(iter(self._inputs), "input")
            batch = self._convert(inputs, name)
        try:
            outputs = self.model(batch, training=False)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise BadInput(f"model rejected the input: {_error_line(exc)}") from exc
        if isinstance(outputs, Mapping):
            return {str(name): _numpy(value) for name, value in outputs.items()}
        if isinstance(outputs, Sequence):
            names = list(getattr(self.model, "output_names", None) or [])
            if len(names) != len(outputs):
                names = [f"output_{i}" for i in range(len(outputs))]
            return {name: _numpy(value) for name, value in zip(names, outputs, strict=True)}
        return _numpy(outputs)

    def _convert(self, value: np.ndarray, name: str) -> tf.Tensor:
        array = np.asarray(value)
        _check_shape(array, self._shapes.get(name), name)
        return _cast(array, tf.as_dtype(self._inputs.get(name) or "float32"), name)


_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces", "[[")


def _error_line(exc: BaseException) -> str:
    """The line of a TF error that says what went wrong, not where in the graph."""
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [line for line in lines if line and not line.startswith(_TF_NOISE)]
    return useful[0] if useful else type(exc).__name__
