"""The ``churn`` example: raw customer rows (CSV) -> scikit-learn preprocessing -> TF classifier.

A Serial endpoint. Step 1 one-hot encodes the categorical columns and scales the numeric ones,
answering CSV features; step 2, a small Keras network exported as a SavedModel, turns those features
into a churn probability. The data are synthetic; the rows look like the classic telecom churn set.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.examples._artifacts import staging, write_tarball

SEED = 7
COLUMNS = (
    "state",
    "account_length",
    "area_code",
    "intl_plan",
    "vmail_plan",
    "day_minutes",
    "eve_minutes",
    "night_minutes",
    "intl_minutes",
    "customer_service_calls",
)
CATEGORICAL = (0, 2, 3, 4)
NUMERIC = (1, 5, 6, 7, 8, 9)
STATES = ("CA", "NY", "TX", "FL", "WA", "OH", "IL", "MA")
AREA_CODES = ("408", "415", "510")
#: Artifact file names under ``<out>/churn/``, as ``churn.yaml`` refers to them.
ARTIFACTS = ("preprocess.tar.gz", "classifier.tar.gz")

Row = list[str]


def raw_rows(n: int, seed: int = SEED) -> tuple[list[Row], np.ndarray]:
    """``n`` synthetic customers as CSV-ready string rows, and whether each churned (0/1)."""
    rng = np.random.default_rng(seed)
    state = rng.choice(STATES, n)
    account_length = rng.integers(1, 240, n)
    area_code = rng.choice(AREA_CODES, n)
    intl_plan = rng.random(n) < 0.1
    vmail_plan = rng.random(n) < 0.3
    day = rng.normal(180, 50, n).clip(0, 360)
    eve = rng.normal(200, 50, n).clip(0, 360)
    night = rng.normal(200, 50, n).clip(0, 360)
    intl = rng.normal(10, 3, n).clip(0, 20)
    calls = rng.poisson(1.5, n)
    logit = (
        -2.2
        + 2.0 * intl_plan
        - 1.0 * vmail_plan
        + 0.015 * (day - 180)
        + 0.004 * (eve - 200)
        + 0.7 * (calls - 1.5)
        + 0.5 * (state == "NY")
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    rows = [
        [
            str(state[i]),
            str(int(account_length[i])),
            str(area_code[i]),
            "yes" if intl_plan[i] else "no",
            "yes" if vmail_plan[i] else "no",
            f"{day[i]:.1f}",
            f"{eve[i]:.1f}",
            f"{night[i]:.1f}",
            f"{intl[i]:.1f}",
            str(int(calls[i])),
        ]
        for i in range(n)
    ]
    return rows, churned


def to_csv(rows: list[Row]) -> str:
    """Rows as headerless CSV, the way SageMaker containers take them."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def as_matrix(rows: list[Row]) -> np.ndarray:
    """Rows as the containers' CSV codec decodes them: numbers as floats, other cells as strings.

    The preprocessing step is fitted on exactly this, so ``area_code`` (``408``) is a float category
    both in training and when served.
    """
    matrix = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    matrix[:] = [[_cell(cell) for cell in row] for row in rows]
    return matrix


def _cell(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def make_preprocessor() -> Any:
    """One-hot for the categorical columns, standard scaling for the numeric ones; dense output."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL,
            ),
            ("numeric", StandardScaler(), NUMERIC),
        ],
        sparse_threshold=0.0,
    )


def make_classifier(n_features: int) -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(n_features,), name="features"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def build(out: Path, *, samples: int = 2000, epochs: int = 15) -> list[Path]:
    """Train both steps on synthetic rows; write ``preprocess.tar.gz`` and ``classifier.tar.gz``."""
    import joblib
    import keras

    keras.utils.set_random_seed(SEED)
    rows, churned = raw_rows(samples)
    preprocess = make_preprocessor()
    features = preprocess.fit_transform(as_matrix(rows)).astype(np.float32)

    classifier = make_classifier(features.shape[1])
    classifier.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    classifier.fit(features, churned, epochs=epochs, batch_size=64, verbose=0, shuffle=True)

    written = []
    with staging() as tmp:
        joblib.dump(preprocess, tmp / "model.joblib")
        written.append(write_tarball(tmp, out / "preprocess.tar.gz"))
    with staging() as tmp:
        # TF-Serving layout: a numbered version folder holding the SavedModel.
        classifier.export(str(tmp / "1"), verbose=False)
        written.append(write_tarball(tmp, out / "classifier.tar.gz"))
    return written
