"""The peer in benchmarks/gateway.py: the same scikit-learn model served by MLServer 1.7.1.

MLServer lives in its own virtual environment (``benchmarks/.venv-mlserver``, made on first use):
its pins (uvloop 0.21, its own FastAPI and pydantic) must not touch the project's. The model is
trained by that environment's Python, so the joblib file always matches its scikit-learn. The
request is MLServer's natural one, the V2 inference protocol's JSON for one row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-mlserver"
#: MLServer 1.7.1 does not start with a newer uvloop.
PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
MODEL = "bench"

# The same data, seed and estimator as the Tandem side (benchmarks/gateway.py).
TRAIN = """
import sys, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
features = int(sys.argv[2])
X = np.random.default_rng(0).normal(size=(500, features))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
joblib.dump(LogisticRegression().fit(X, y), sys.argv[1] + '/model.joblib')
"""


def python() -> Path:
    """The environment's interpreter, creating the environment the first time."""
    interpreter = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if marker.is_file() and marker.read_text() == "\n".join(PACKAGES):
        return interpreter
    print(f"creating {VENV} with {' '.join(PACKAGES)} (first run only) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [str(interpreter), "-m", "pip", "install", "--disable-pip-version-check", *PACKAGES],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        raise SystemExit(f"installing MLServer failed:\n{install.stdout}\n{install.stderr}")
    marker.write_text("\n".join(PACKAGES))
    return interpreter


def prepare(folder: Path, interpreter: Path, features: int, ports: tuple[int, int, int]) -> None:
    """Model, ``model-settings.json`` and ``settings.json`` in ``folder``, as MLServer's docs do."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(interpreter), "-c", TRAIN, str(folder), str(features)], check=True)
    model_settings = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    # MLServer's defaults (one parallel inference worker, metrics on) but ``debug``, which logs
    # every request: the gateway, like any production server, logs none.
    http, grpc, metrics = ports
    settings = {"debug": False, "http_port": http, "grpc_port": grpc, "metrics_port": metrics}
    (folder / "settings.json").write_text(json.dumps(settings))


def command(interpreter: Path, folder: Path) -> list[str]:
    return [str(interpreter.parent / "mlserver"), "start", str(folder)]


def ready_path() -> str:
    return f"/v2/models/{MODEL}/ready"


def infer_path() -> str:
    return f"/v2/models/{MODEL}/infer"


def body(row: list[float]) -> bytes:
    """One row in the V2 inference protocol's JSON."""
    request = {
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
    }
    return json.dumps(request).encode()
