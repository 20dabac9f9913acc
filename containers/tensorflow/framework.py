"""TensorFlow defaults: SavedModel or Keras file, spoken to in TF Serving's REST format.

The default ``input_fn`` returns a :class:`TFRequest` and the default ``predict_fn`` a
:class:`TFResponse`, so that the answer mirrors the request's shape (``instances`` ->
``predictions``, ``inputs`` -> ``outputs``). A user's ``input_fn`` may return plain arrays (or a
dict of arrays by input name): the default ``predict_fn`` then returns plain arrays too (a dict of
arrays by output name for a SavedModel), and the default ``output_fn`` takes either.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from containers import codecs
from containers.batching import split_rows
from containers.errors import UnsupportedAccept, UnsupportedContentType
from containers.frameworks import ModelFramework
from containers.tensorflow import model as tf_model
from containers.tensorflow import serving
from containers.tensorflow.serving import TFRequest, TFResponse

log = logging.getLogger(__name__)

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
NPY = "application/x-npy"

_threads_lock = threading.Lock()
_threads_set = False


class TensorFlowFramework(ModelFramework):
    """SavedModel (``serving_default``) or Keras file; TF-Serving JSON, JSON lines, CSV, npy."""

    name = "tensorflow"
    content_types = (JSON, JSONLINES, CSV, NPY)
    accepts = (JSON, JSONLINES, CSV, NPY)

    def configure_threads(self, intra_op: int, inter_op: int) -> None:
        # TF sizes its pools when the eager context starts; they are process-wide and fixed after.
        global _threads_set
        with _threads_lock:
            if _threads_set:
                return
            _threads_set = True
            try:
                if intra_op > 0:
                    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
                if inter_op > 0:
                    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
            except RuntimeError as exc:  # the eager context already started
                log.warning("could not size TensorFlow thread pools: %s", exc)

    def load(self, model_dir: Path) -> Any:
        return tf_model.load(model_dir)

    def predict(self, data: Any, model: Any) -> Any:
        if isinstance(data, TFRequest):
            outputs = model.predict(data.inputs, data.signature_name)
            return TFResponse(outputs, columnar=data.columnar)
        # A user's input_fn gave plain arrays: give plain arrays back to a user's output_fn.
        if isinstance(data, dict):
            return model.predict({str(name): np.asarray(value) for name, value in data.items()})
        return model.predict(np.asarray(data))

    def unload(self, model: Any) -> None:
        # clear_session() would reset state other loaded models share, so only drop references.
        for attribute in ("_loaded", "model"):
            if hasattr(model, attribute):
                setattr(model, attribute, None)
        gc.collect()

    def input_fn(self, body: bytes, content_type: str) -> Any:
        if content_type == JSON:
            return serving.parse_json(body)
        if content_type == JSONLINES:
            return serving.parse_jsonlines(body)
        if content_type in (CSV, NPY):
            return TFRequest(np.asarray(codecs.decode(body, content_type)))
        supported = ", ".join(self.content_types)
        raise UnsupportedContentType(
            f"content type {content_type!r} is not supported; use one of {supported}"
        )

    # Adaptive batching (containers.batching.RowBatching): row-format requests (instances, CSV,
    # npy) stack on the first axis; columnar ones ({"inputs": ...}) run alone.
    def batch_rows(self, data: Any) -> tuple[Hashable, int] | None:
        if not isinstance(data, TFRequest) or data.columnar:
            return None
        inputs = data.inputs
        arrays = inputs if isinstance(inputs, dict) else {"": inputs}
        sizes = {array.shape[0] if array.ndim else 0 for array in arrays.values()}
        if len(sizes) != 1 or not (rows := sizes.pop()):
            return None
        shapes = tuple(
            (name, array.shape[1:], array.dtype.kind if array.dtype.kind in "SUO" else array.dtype)
            for name, array in arrays.items()
        )
        return (data.signature_name, isinstance(inputs, dict), shapes), int(rows)

    def stack(self, items: list[Any]) -> Any:
        first: TFRequest = items[0]
        if isinstance(first.inputs, dict):
            inputs: Any = {
                name: np.concatenate([item.inputs[name] for item in items]) for name in first.inputs
            }
        else:
            inputs = np.concatenate([item.inputs for item in items])
        return TFRequest(inputs, signature_name=first.signature_name)

    def split(self, prediction: Any, counts: list[int]) -> list[Any] | None:
        if not isinstance(prediction, TFResponse):
            return None
        parts = split_rows(prediction.outputs, counts)
        return None if parts is None else [TFResponse(part) for part in parts]

    def output_fn(self, prediction: Any, accept: str) -> bytes:
        response = serving.as_response(prediction)
        if accept == JSON:
            return serving.to_json(response)
        if accept == JSONLINES:
            return serving.to_jsonlines(response)
        if accept in (CSV, NPY):
            return codecs.encode(serving.single_output(response, accept), accept)
        raise UnsupportedAccept(
            f"accept {accept!r} is not supported; use one of {', '.join(self.accepts)}"
        )
