"""The ``zoo`` example: one scikit-learn, one PyTorch and one TensorFlow model side by side.

A Direct endpoint: each request names its container in the
``X-Amzn-SageMaker-Target-Container-Hostname`` header. All three learned the same synthetic binary
task on four numeric features and answer the probability of class 1, so their answers compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.examples._artifacts import staging, write_tarball

SEED = 11
FEATURES = 4
#: Artifact file names under ``<out>/zoo/``, as ``zoo.yaml`` refers to them.
ARTIFACTS = ("sklearn.tar.gz", "pytorch.tar.gz", "tensorflow.tar.gz")


def dataset(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of four float32 features and a 0/1 label that depends on all of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.8 * x[:, 1] * x[:, 2] - 0.6 * x[:, 3] > 0).astype(np.int64)
    return x, y


def build_sklearn(x: np.ndarray, y: np.ndarray, out: Path) -> Path:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=SEED, n_jobs=1)
    model.fit(x, y)
    with staging() as tmp:
        joblib.dump(model, tmp / "model.joblib")
        return write_tarball(tmp, out)


def build_pytorch(x: np.ndarray, y: np.ndarray, out: Path, *, epochs: int = 60) -> Path:
    import torch

    torch.manual_seed(SEED)
    model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
        torch.nn.Sigmoid(),
    )
    inputs = torch.from_numpy(x)
    targets = torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    loss_fn = torch.nn.BCELoss()
    for _ in range(epochs):  # full batch: the data set is tiny
        optimiser.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimiser.step()
    model.eval()
    with staging() as tmp:
        torch.jit.script(model).save(str(tmp / "model.pt"))
        return write_tarball(tmp, out)


def build_tensorflow(x: np.ndarray, y: np.ndarray, out: Path, *, epochs: int = 15) -> Path:
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=(FEATURES,), name="features"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    with staging() as tmp:
        model.export(str(tmp / "1"), verbose=False)
        return write_tarball(tmp, out)


def build(out: Path, *, samples: int = 1500) -> list[Path]:
    """Train all three models on one synthetic data set; write their artifacts into ``out``."""
    x, y = dataset(samples)
    return [
        build_sklearn(x, y, out / "sklearn.tar.gz"),
        build_pytorch(x, y, out / "pytorch.tar.gz"),
        build_tensorflow(x, y, out / "tensorflow.tar.gz"),
    ]
