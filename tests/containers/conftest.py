"""Reusable helpers for container tests: package a model dir the SageMaker way, start a real server.

Fixture names are stable (other framework tests use them):

- ``package_model(root, artifacts, code=...)`` (plain function): write a ``model.tar.gz`` holding
  the artifacts and ``code/<program>``, unpack it into a fresh model dir, and return that dir.
- ``start_container`` (module-scoped fixture): a factory that starts
  ``python -m containers serve --framework <name>`` on a free port, waits for ``/ping`` with a
  deadline, and stops the process when the module's tests are done. Returns a :class:`Container`.
- ``HOOKS_PY``: a user helper module (``extra_code={"hooks.py": HOOKS_PY}``) whose
  ``hold_or_fail(context)`` a user ``predict_fn`` calls, with ``assert_user_error_is_500`` and
  ``assert_ping_answers_while_predicting`` driving it through the custom-attributes header.
"""

from __future__ import annotations

import io
import tarfile
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import pytest

from tests.support import PYTHON, free_port, running, wait_until

#: TorchScript is deprecated in torch 2.13 but still SageMaker's default artifact: allow it.
TORCHSCRIPT_DEPRECATED = "ignore:`torch.jit.[a-z_]+` is deprecated:DeprecationWarning"
#: Keras 3 saving trips numpy 2's __array__(copy=...) deprecation on TF variables (not our code).
KERAS_NUMPY_COPY = (
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


@dataclass
class Container:
    """A running container process and where to reach it."""

    url: str
    proc: Popen[bytes]
    log: Path
    model_dir: Path | None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def package_model(
    root: Path,
    artifacts: Mapping[str, bytes | str],
    *,
    code: str | None = None,
    program: str = "inference.py",
    extra_code: Mapping[str, str] | None = None,
) -> Path:
    """Build ``root/model.tar.gz`` (artifacts at the top, user code under ``code/``), unpack it into
    ``root/model`` and return that dir, as SageMaker does with ``ModelDataUrl``."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        name: data.encode() if isinstance(data, str) else data for name, data in artifacts.items()
    }
    if code is not None:
        files[f"code/{program}"] = textwrap.dedent(code).encode()
    for name, text in (extra_code or {}).items():
        files[f"code/{name}"] = textwrap.dedent(text).encode()
    tarball = root / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    model_dir = root / "model"
    model_dir.mkdir()
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


StartContainer = Callable[..., Container]


@pytest.fixture(scope="module")
def start_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartContainer]:
    """Factory: ``start_container("sklearn", model_dir, env={...}, multi_model=False)``."""
    with ExitStack() as stack:

        def start(
            framework: str,
            model_dir: Path | None = None,
            *,
            env: Mapping[str, str] | None = None,
            multi_model: bool = False,
            timeout: float = 120.0,
        ) -> Container:
            port = free_port()
            logs = tmp_path_factory.mktemp(f"{framework}-logs")
            log = logs / "container.log"
            full_env = {
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "SAGEMAKER_BASE_DIR": str(logs / "opt-ml"),
                "TANDEM_CONTAINER_HOST": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
            if model_dir is not None:
                full_env["SM_MODEL_DIR"] = str(model_dir)
            if multi_model:
                full_env["SAGEMAKER_MULTI_MODEL"] = "true"
            full_env.update(env or {})
            url = f"http://127.0.0.1:{port}"
            args = [PYTHON, "-m", "containers", "serve", "--framework", framework]
            proc = stack.enter_context(
                running(args, env=full_env, url=url, timeout=timeout, log=log)
            )
            return Container(url=url, proc=proc, log=log, model_dir=model_dir)

        yield start


HOOKS_PY = '''
"""Test hooks for a user predict_fn, driven by the X-Amzn-SageMaker-Custom-Attributes header."""
import time
from pathlib import Path


def hold_or_fail(context):
    """``fail``: raise; ``hold=<started>,<release>``: touch started, wait (30 s at most)."""
    attributes = context.custom_attributes or ""
    if attributes == "fail":
        raise ValueError("boom: the user's predict_fn refused this")
    if attributes.startswith("hold="):
        started, release = (Path(p) for p in attributes.removeprefix("hold=").split(","))
        started.touch()
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
'''

#: Sends one valid request (plus these headers) to a container whose predict_fn has the hooks.
Send = Callable[[Mapping[str, str]], httpx.Response]


def assert_user_error_is_500(url: str, send: Send) -> None:
    """An exception in user code: 500 naming it, no stack trace, and the container stays up."""
    response = send({CUSTOM_ATTRIBUTES: "fail"})
    assert response.status_code == 500, response.text
    assert response.json() == {
        "error": "model_error",
        "message": "predict_fn raised ValueError: boom: the user's predict_fn refused this",
    }
    assert "Traceback" not in response.text
    assert httpx.get(url + "/ping", timeout=5).status_code == 200
    assert send({}).status_code == 200


def assert_ping_answers_while_predicting(url: str, send: Send, tmp_path: Path) -> None:
    """Hold a prediction open in ``predict_fn``; ``/ping`` answers within 2 s meanwhile."""
    started, release = tmp_path / "started", tmp_path / "release"
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(send({CUSTOM_ATTRIBUTES: f"hold={started},{release}"}))
    )
    slow.start()
    try:
        wait_until(started.exists, timeout=20, what="prediction started")
        assert httpx.get(url + "/ping", timeout=2).status_code == 200
        assert not results, "the prediction finished before it was released"
    finally:
        release.touch()
        slow.join(timeout=30)
    assert results and results[0].status_code == 200, results
