"""Reusable helpers for container tests: package a model dir the SageMaker way, start a real server.

Fixture names are stable (other framework tests use them):

- ``package_model(root, artifacts, code=...)`` (plain function): write a ``model.tar.gz`` holding
  the artifacts and ``code/<program>``, unpack it into a fresh model dir, and return that dir.
- ``start_container`` (module-scoped fixture): a factory that starts
  ``python -m containers serve --framework <name>`` on a free port, waits for ``/ping`` with a
  deadline, and stops the process when the module's tests are done. Returns a :class:`Container`.
"""

from __future__ import annotations

import io
import tarfile
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest

from tests.support import PYTHON, free_port, running


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
