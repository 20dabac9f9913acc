"""scikit-learn defaults: load a joblib/pickle artifact and call ``predict`` (or a chosen method).

``TANDEM_SKLEARN_METHOD`` picks ``predict`` (default), ``predict_proba``, ``decision_function`` or
``transform``; the last makes a preprocessing container whose CSV output feeds the next container.
Input keeps strings that are not numbers (object arrays), so a ``ColumnTransformer`` with
categorical columns takes raw rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from threadpoolctl import threadpool_limits

from containers import codecs
from containers.batching import split_rows
from containers.errors import BadInput, ModelLoadError
from containers.frameworks import ModelFramework

if TYPE_CHECKING:
    from typing import Self

    from containers.settings import ContainerSettings

log = logging.getLogger(__name__)

MODEL_FILES = ("model.joblib", "model.pkl")
METHODS = ("predict", "predict_proba", "decision_function", "transform")
#: Native thread pools read these when they start; set before any is loaded by a model.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SklearnFramework(ModelFramework):
    """Joblib or pickle estimators; JSON, CSV, JSON lines and npy in and out."""

    name = "sklearn"
    intra_op_per_thread = True

    def __init__(self, method: str = "predict") -> None:
        if method not in METHODS:
            raise ValueError(f"unknown scikit-learn method {method!r}; use one of {METHODS}")
        self.method = method
        self._intra_op = 0

    @classmethod
    def from_settings(cls, settings: ContainerSettings) -> Self:
        return cls(settings.sklearn_method)

    def configure_threads(self, intra_op: int, inter_op: int) -> None:
        # scikit-learn parallelises inside one call (OpenMP / BLAS): only the intra-op size applies.
        if intra_op <= 0:
            return
        self._intra_op = intra_op
        for name in _THREAD_ENV:
            os.environ.setdefault(name, str(intra_op))
        threadpool_limits(limits=intra_op)

    def thread_initializer(self) -> None:
        # OpenMP's thread count is per calling thread: the worker threads need it set too.
        if self._intra_op > 0:
            threadpool_limits(limits=self._intra_op, user_api="openmp")

    def load(self, model_dir: Path) -> Any:
        for name in MODEL_FILES:
            path = model_dir / name
            if path.is_file():
                try:
                    model = joblib.load(path, mmap_mode=_mmap_mode(path))
                except Exception as exc:  # unpickling raises anything a class's __setstate__ does
                    raise ModelLoadError(
                        f"cannot load {path}: {type(exc).__name__}: {exc}"
                    ) from exc
                if not callable(getattr(model, self.method, None)):
                    raise ModelLoadError(
                        f"{type(model).__name__} from {name} has no {self.method}(); set "
                        f"TANDEM_SKLEARN_METHOD to one of its methods"
                    )
                return model
        raise ModelLoadError(
            f"no {' or '.join(MODEL_FILES)} in {model_dir}: the default scikit-learn model_fn "
            "loads joblib.dump(model, 'model.joblib'); define model_fn in code/inference.py to "
            "load anything else"
        )

    def input_fn(self, body: bytes, content_type: str) -> Any:
        return as_features(codecs.decode(body, content_type))

    def predict(self, data: Any, model: Any) -> Any:
        method = getattr(model, self.method)
        try:
            return method(data)
        except ValueError as exc:  # scikit-learn's way to reject a feature count or a value
            shape = getattr(data, "shape", None)
            raise BadInput(f"model rejected input of shape {shape}: {exc}") from exc

    # Adaptive batching (containers.batching.RowBatching): rows are the first axis of features.
    def batch_rows(self, data: Any) -> tuple[Hashable, int] | None:
        if not isinstance(data, np.ndarray) or data.ndim not in (1, 2) or not len(data):
            return None
        if data.ndim == 1 and data.dtype != object:
            return None  # as_features makes numbers 2-D; a 1-D array here is not rows
        return (data.ndim, data.shape[1:], data.dtype.kind == "O"), data.shape[0]

    def stack(self, items: list[Any]) -> Any:
        return np.concatenate(items, axis=0)

    def split(self, prediction: Any, counts: list[int]) -> list[Any] | None:
        return split_rows(prediction, counts)


def _mmap_mode(path: Path) -> str | None:
    """``"c"`` for an uncompressed pickle: its arrays map the file copy-on-write instead of
    being read into fresh memory, so a 10 MB tree loads in a third of the time (what it keeps is
    copied out of the map, or paged in on use) and stays writable. None for a compressed file,
    which joblib cannot map (it would warn about it once per file)."""
    with open(path, "rb") as f:
        return "c" if f.read(1) == b"\x80" else None  # a pickle's PROTO opcode


def as_features(data: Any) -> Any:
    """Decoded input -> what estimators take: a 2-D float array, else an object array of rows.

    JSON may wrap rows as ``{"instances": [...]}`` (or ``"inputs"``). A flat list of numbers is one
    row; a flat list of strings stays 1-D (text estimators take documents).
    """
    if isinstance(data, Mapping):
        for key in ("instances", "inputs"):
            if key in data:
                data = data[key]
                break
        else:
            raise BadInput('a JSON object must hold the rows under "instances" (or "inputs")')
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            array = _object_rows(data)
    if array.ndim == 1 and array.dtype.kind in "fiub":
        array = array.reshape(1, -1)
    if array.ndim == 0:
        raise BadInput("input is a single value; send rows of features")
    return array


def _object_rows(data: Any) -> np.ndarray[Any, Any]:
    if not isinstance(data, list) or not data:
        raise BadInput("input must be a non-empty list of rows")
    if all(isinstance(row, list) for row in data):
        width = len(data[0])
        for number, row in enumerate(data, start=1):
            if len(row) != width:
                raise BadInput(f"row {number} has {len(row)} values, row 1 has {width}")
        array: np.ndarray[Any, Any] = np.empty((len(data), width), dtype=object)
    elif any(isinstance(row, list | dict) for row in data):
        raise BadInput("input mixes rows and single values")
    else:
        array = np.empty(len(data), dtype=object)
    array[:] = data
    return array
