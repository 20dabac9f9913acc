"""The ``tenants`` example: one small scikit-learn model per customer, one MultiModel endpoint.

The seeds' main case: a MultiModel endpoint of two instances serving per-customer models, each
request naming its model with ``TargetModel``. Every customer's model learned its own synthetic
task (a price from three features, with customer-specific weights), so the answers differ by
customer. The gateway loads a model on its first call and keeps it on one instance (affinity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.examples._artifacts import staging, write_tarball

SEED = 23
FEATURES = 3
CUSTOMERS = 24
#: Each customer's artifact under ``<out>/tenants/``; its name is the request's ``TargetModel``.
ARTIFACTS = tuple(f"customer-{i:02d}.tar.gz" for i in range(CUSTOMERS))


def weights(customer: int) -> np.ndarray:
    """The customer's true weights (and intercept last): what its model should learn."""
    return np.random.default_rng(SEED + customer).uniform(-3.0, 3.0, size=FEATURES + 1)


def dataset(customer: int, n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of three features and the customer's noisy linear target."""
    rng = np.random.default_rng(seed * 1000 + customer)
    x = rng.uniform(0.0, 10.0, size=(n, FEATURES))
    w = weights(customer)
    return x, x @ w[:FEATURES] + w[FEATURES] + rng.normal(scale=0.1, size=n)


def build_one(customer: int, out: Path, *, samples: int = 200) -> Path:
    import joblib
    from sklearn.linear_model import Ridge

    x, y = dataset(customer, samples)
    model = Ridge(alpha=0.1).fit(x, y)
    with staging() as tmp:
        joblib.dump(model, tmp / "model.joblib")
        return write_tarball(tmp, out)


def build(out: Path) -> list[Path]:
    """Train every customer's model; write ``customer-NN.tar.gz`` into ``out``."""
    return [build_one(i, out / name) for i, name in enumerate(ARTIFACTS)]
