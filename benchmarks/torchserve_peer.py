"""A peer in benchmarks/batching.py: the same TorchScript file served by TorchServe 0.12.

TorchServe lives in its own virtual environment (``TANDEM_TORCHSERVE_VENV``, default
``<tmp>/tandem-torchserve``, made on first use with ``pip install torchserve``); it needs Java 17 on
``PATH``. That environment reuses this one's PyTorch through a ``.pth`` file instead of downloading
its own. The model runs with TorchServe's batching on (``batchSize 32``, ``maxBatchDelay 2``, one
worker) behind a small handler: each request is a JSON list of rows, its rows are stacked with the
others' and the answer is that request's rows, as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PACKAGES = ("torchserve==0.12.0", "torch-model-archiver==0.12.0")
MODEL = "bench"

HANDLER = '''
import json

import torch
from ts.torch_handler.base_handler import BaseHandler


class Rows(BaseHandler):
    """JSON rows in, JSON rows out; TorchServe hands over the requests of one batch."""

    def preprocess(self, data):
        self._counts = []
        tensors = []
        for request in data:
            body = request.get("body") or request.get("data")
            rows = json.loads(body) if isinstance(body, (bytes, bytearray, str)) else body
            tensor = torch.tensor(rows, dtype=torch.float32)
            self._counts.append(tensor.shape[0])
            tensors.append(tensor)
        return torch.cat(tensors)

    def inference(self, data, *args, **kwargs):
        with torch.inference_mode():
            return self.model(data)

    def postprocess(self, data):
        return [part.tolist() for part in torch.split(data, self._counts)]
'''


def venv() -> Path:
    default = Path(tempfile.gettempdir()) / "tandem-torchserve"
    return Path(os.environ.get("TANDEM_TORCHSERVE_VENV", str(default)))


def python() -> Path | None:
    """The environment's interpreter (made the first time); None when it cannot be made."""
    if shutil.which("java") is None:
        print("TorchServe needs java on PATH", flush=True)
        return None
    root = venv()
    interpreter = root / "bin" / "python"
    marker = root / ".installed"
    if marker.is_file() and marker.read_text() == "\n".join(PACKAGES):
        return interpreter
    print(f"creating {root} with {' '.join(PACKAGES)} (first run only) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(root)], check=True)
    purelib = subprocess.run(
        [str(interpreter), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This environment's torch (and numpy), found after the venv's own packages.
    Path(purelib, "zz-tandem.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run(
        [str(interpreter), "-m", "pip", "install", "--disable-pip-version-check", *PACKAGES],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        print(f"installing TorchServe failed:\n{install.stdout[-2000:]}{install.stderr[-2000:]}")
        return None
    marker.write_text("\n".join(PACKAGES))
    return interpreter


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(folder: Path, interpreter: Path, model_pt: Path) -> tuple[Path, str]:
    """The ``.mar`` archive and ``config.properties``; returns the config and the predict URL."""
    store = folder / "store"
    store.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(HANDLER)
    archiver = interpreter.parent / "torch-model-archiver"
    subprocess.run(
        [
            str(archiver),
            "--model-name",
            MODEL,
            "--version",
            "1.0",
            "--serialized-file",
            str(model_pt),
            "--handler",
            str(folder / "handler.py"),
            "--export-path",
            str(store),
            "--force",
        ],
        check=True,
    )
    inference, management, metrics = free_port(), free_port(), free_port()
    models = {
        MODEL: {
            "1.0": {
                "marName": f"{MODEL}.mar",
                "minWorkers": 1,
                "maxWorkers": 1,
                "batchSize": 32,
                "maxBatchDelay": 2,
                "responseTimeout": 60,
            }
        }
    }
    config = folder / "config.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{inference}\n"
        f"management_address=http://127.0.0.1:{management}\n"
        f"metrics_address=http://127.0.0.1:{metrics}\n"
        f"model_store={store}\n"
        f"load_models={MODEL}.mar\n"
        f"models={json.dumps(models)}\n"
        "disable_token_authorization=true\n"
        "enable_envvars_config=false\n"
        "install_py_dep_per_model=false\n"
        "default_workers_per_model=1\n"
    )
    return config, f"http://127.0.0.1:{inference}/predictions/{MODEL}"


def start(stack: contextlib.ExitStack, workdir: Path, model_pt: Path) -> str | None:
    """TorchServe serving ``model_pt``, stopped when ``stack`` closes; its predict URL, or None."""
    interpreter = python()
    if interpreter is None:
        return None
    folder = workdir / "torchserve"
    config, url = prepare(folder, interpreter, model_pt)
    log = (folder / "torchserve.log").open("wb")
    stack.callback(log.close)
    env = {**os.environ, "LOG_LOCATION": str(folder / "logs"), "METRICS_LOCATION": str(folder)}
    proc = subprocess.Popen(
        [
            str(interpreter.parent / "torchserve"),
            "--start",
            "--foreground",
            "--ncs",
            "--disable-token-auth",
            "--ts-config",
            str(config),
            "--model-store",
            str(folder / "store"),
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(_stop, proc)
    deadline = time.monotonic() + 180
    row = json.dumps([[0.0] * 20]).encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"TorchServe exited with {proc.returncode}; see {folder / 'torchserve.log'}")
            return None
        request = urllib.request.Request(url, row, {"Content-Type": "application/json"})
        with (
            contextlib.suppress(OSError, urllib.error.HTTPError),
            urllib.request.urlopen(request, timeout=5) as answer,
        ):
            if answer.status == 200:
                return url
        time.sleep(0.2)
    print("TorchServe did not answer within 180 s", flush=True)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
