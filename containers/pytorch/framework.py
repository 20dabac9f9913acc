"""PyTorch defaults: load TorchScript, predict under ``torch.inference_mode()``, tensors in and out.

``model.pt`` (TorchScript) is the SageMaker default. TorchScript is deprecated since torch 2.5, so a
``model.pt2`` written by ``torch.export.save`` loads too (export it with a dynamic batch dimension).

Text bodies (JSON, CSV, JSON lines) carry no dtype, so they always become ``float32`` tensors, the
dtype nearly every model wants. ``.npy`` bodies keep integer and boolean dtypes (token ids, masks);
their floats become ``float32``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from containers import codecs
from containers.batching import split_rows
from containers.errors import BadInput, ModelLoadError
from containers.frameworks import ModelFramework

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
EXPORTED_FILE = "model.pt2"
_TEXT_TYPES = frozenset({"application/json", "text/csv", "application/jsonlines"})

# torch lets the inter-op pool be sized only once per process, before any parallel work.
_interop_lock = threading.Lock()
_interop_set = False


def _set_interop_once(threads: int) -> None:
    global _interop_set
    with _interop_lock:
        if _interop_set:
            return
        _interop_set = True
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError as exc:  # parallel work already ran in this process
            log.warning("could not set PyTorch inter-op threads to %d: %s", threads, exc)


def to_tensor(data: Any, *, keep_ints: bool = True) -> torch.Tensor:
    """Turn decoded input into a CPU tensor the way most models expect it."""
    if isinstance(data, torch.Tensor):
        return data
    try:
        array = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise BadInput(f"input is not a rectangular array: {exc}") from exc
    kind = array.dtype.kind
    if kind in "iub" and keep_ints:
        return torch.from_numpy(array.astype(np.int64 if kind in "iu" else np.bool_, copy=False))
    if kind not in "fiub":
        raise BadInput(
            f"the default PyTorch handler needs numbers, got an array of dtype {array.dtype}; "
            "define input_fn in code/inference.py for other input"
        )
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def to_numpy(prediction: Any) -> Any:
    """Turn a model's output (a tensor, or a tuple/list/dict of them) into numpy for the codecs."""
    if isinstance(prediction, torch.Tensor):
        return prediction.detach().cpu().numpy()
    if isinstance(prediction, Mapping):
        return {key: to_numpy(value) for key, value in prediction.items()}
    if isinstance(prediction, Sequence) and not isinstance(prediction, str | bytes):
        return [to_numpy(value) for value in prediction]
    return prediction


class PyTorchFramework(ModelFramework):
    """TorchScript ``model.pt`` on CPU; numeric arrays in every codec's content type."""

    name = "pytorch"
    intra_op_per_thread = True

    def __init__(self) -> None:
        self._intra_op = 0

    def configure_threads(self, intra_op: int, inter_op: int) -> None:
        if intra_op > 0:
            self._intra_op = intra_op
            torch.set_num_threads(intra_op)
        if inter_op > 0:
            _set_interop_once(inter_op)

    def thread_initializer(self) -> None:
        # OpenMP's thread count is per calling thread: without this a prediction in a worker
        # thread uses every core, whatever TANDEM_INTRA_OP_THREADS or the per-worker share says.
        if self._intra_op > 0:
            torch.set_num_threads(self._intra_op)

    def load(self, model_dir: Path) -> Any:
        path = model_dir / MODEL_FILE
        if path.is_file():
            try:
                model = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError) as exc:
                raise ModelLoadError(f"{path} is not a TorchScript model: {exc}") from exc
            return model.eval()
        exported = model_dir / EXPORTED_FILE
        if exported.is_file():
            try:
                # An exported module is fixed in the mode it was exported in; eval() is refused.
                return torch.export.load(str(exported)).module()
            except (RuntimeError, ValueError, KeyError) as exc:
                raise ModelLoadError(f"{exported} is not a torch.export program: {exc}") from exc
        raise ModelLoadError(
            f"no {MODEL_FILE} or {EXPORTED_FILE} in {model_dir}: the default PyTorch model_fn "
            "loads TorchScript (torch.jit.script(model).save('model.pt')) or an exported program "
            "(torch.export.save(program, 'model.pt2')); define model_fn in code/inference.py to "
            "load anything else"
        )

    def input_fn(self, body: bytes, content_type: str) -> Any:
        data = codecs.decode(body, content_type)
        return to_tensor(data, keep_ints=content_type not in _TEXT_TYPES)

    def predict(self, data: Any, model: Any) -> Any:
        tensor = to_tensor(data)
        with torch.inference_mode():
            try:
                return model(tensor)
            # A shape or dtype mismatch (RuntimeError; AssertionError from an exported program's
            # shape guards): the caller's input was wrong.
            except (RuntimeError, AssertionError) as exc:
                raise BadInput(
                    f"model rejected input of shape {tuple(tensor.shape)}: {_error_line(exc)}"
                ) from exc

    def output_fn(self, prediction: Any, accept: str) -> bytes:
        return codecs.encode(to_numpy(prediction), accept)

    # Adaptive batching (containers.batching.RowBatching): a tensor of rows stacks on dim 0; a
    # 1-D tensor has no batch dimension (the model sees it whole), so it runs alone.
    def batch_rows(self, data: Any) -> tuple[Hashable, int] | None:
        if not isinstance(data, torch.Tensor) or data.ndim < 2 or not data.shape[0]:
            return None
        return (tuple(data.shape[1:]), data.dtype), int(data.shape[0])

    def stack(self, items: list[Any]) -> Any:
        return torch.cat(items, dim=0)

    def split(self, prediction: Any, counts: list[int]) -> list[Any] | None:
        return split_rows(to_numpy(prediction), counts)  # numpy views: cheaper than tensor slices


def _error_line(exc: BaseException) -> str:
    """TorchScript errors carry the scripted code's traceback; the last line is the error itself."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1].removeprefix("RuntimeError: ")
