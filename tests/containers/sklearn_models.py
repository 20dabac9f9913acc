"""Tiny scikit-learn models trained at test time on synthetic data, and their packaging."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.containers.conftest import package_model

FEATURES = 20
COLORS = ("red", "green", "blue")


def synthetic(rows: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, FEATURES))


def train_classifier(seed: int = 0) -> LogisticRegression:
    x = synthetic(200, seed)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return LogisticRegression(max_iter=200).fit(x, y)


def raw_rows(rows: int = 30, seed: int = 0) -> np.ndarray:
    """Raw records: a categorical colour, then two numbers (an object array, like decoded CSV)."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, 3), dtype=object)
    out[:, 0] = rng.choice(COLORS, size=rows)
    out[:, 1:] = rng.normal(size=(rows, 2))
    return out


def train_preprocessor(seed: int = 0) -> Any:
    """One-hot the colour, scale the numbers: the first step of a Serial pipeline."""
    transformer = ColumnTransformer(
        [("color", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2])]
    )
    return make_pipeline(transformer).fit(raw_rows(seed=seed))


def package(root: Path, model: Any, code: str | None = None, **extra: Any) -> Path:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return package_model(root, {"model.joblib": buffer.getvalue()}, code=code, **extra)


def csv_body(rows: np.ndarray) -> bytes:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows.tolist()).encode()


def npy_body(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
