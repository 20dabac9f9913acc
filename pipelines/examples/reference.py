"""The examples' answers computed in-process from the same artifacts the endpoints serve.

What the served answers are checked against: if a container, the gateway or a codec between them
changes a number, the two disagree. Framework imports stay inside the functions.
"""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.examples import MODELS_DIR, churn


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract a ``model.tar.gz`` into ``dest`` (refusing links and paths outside it)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


def _serving_fn(model_dir: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]


def _serve(model_dir: Path, features: np.ndarray) -> np.ndarray:
    fn = _serving_fn(model_dir)
    (output,) = fn(features=features.astype(np.float32)).values()
    return np.asarray(output.numpy())


def churn_features(rows: list[churn.Row], scratch: Path, models: Path = MODELS_DIR) -> np.ndarray:
    """Step 1 of ``churn``: what ``preprocess`` hands to ``classifier``."""
    import joblib

    folder = unpack(models / "churn" / "preprocess.tar.gz", scratch / "churn-preprocess")
    preprocess = joblib.load(folder / "model.joblib")
    return np.asarray(preprocess.transform(churn.as_matrix(rows)), dtype=np.float64)


def churn_probabilities(
    rows: list[churn.Row], scratch: Path, models: Path = MODELS_DIR
) -> np.ndarray:
    """Both steps of ``churn``: one churn probability per raw row, shape ``(n, 1)``."""
    features = churn_features(rows, scratch, models)
    folder = unpack(models / "churn" / "classifier.tar.gz", scratch / "churn-classifier")
    return _serve(folder, features)


def zoo_predictions(
    hostname: str, x: np.ndarray, scratch: Path, models: Path = MODELS_DIR
) -> np.ndarray:
    """What container ``hostname`` of ``zoo`` answers for the feature rows ``x``."""
    folder = unpack(models / "zoo" / f"{hostname}.tar.gz", scratch / f"zoo-{hostname}")
    if hostname == "sklearn":
        import joblib

        return np.asarray(joblib.load(folder / "model.joblib").predict_proba(x))
    if hostname == "pytorch":
        import torch

        with warnings.catch_warnings():
            # TorchScript is the contract's PyTorch format, deprecated upstream but still served.
            warnings.filterwarnings(
                "ignore", r"`torch\.jit\.load` is deprecated", DeprecationWarning
            )
            model = torch.jit.load(str(folder / "model.pt"), map_location="cpu")
        with torch.inference_mode():
            return np.asarray(model(torch.from_numpy(x.astype(np.float32))).numpy())
    if hostname == "tensorflow":
        return _serve(folder, x)
    raise ValueError(f"zoo has no container {hostname!r} (it has: sklearn, pytorch, tensorflow)")
