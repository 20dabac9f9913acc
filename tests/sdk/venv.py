"""The SageMaker Python SDK (v2) and the AWS CLI (v1) in a virtual environment of their own.

They cannot live in the project's environment: the SDK pins ``protobuf``, ``packaging`` and
others below what TensorFlow and the rest use there (``pip install --dry-run`` says so). So the
tests build ``.venv-sdk/`` once, from the package index as any user would, reuse it while its
requirements are unchanged, and run the clients' code in it as scripts. When it cannot be built
(no index reachable), the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

#: The clients under test: SDK v2 and AWS CLI v1 (which pins its own botocore).
REQUIREMENTS = ("sagemaker>=2.257,<3", "awscli>=1.46,<2")
VENV = ROOT / ".venv-sdk"
#: Seconds a build may take (resolving and installing some 60 packages).
BUILD_TIMEOUT = 900


def sdk_python() -> Path:
    """The interpreter of the SDK's environment, built on first use (or the test is skipped)."""
    python = VENV / "bin" / "python"
    stamp = VENV / "tandem-requirements.txt"
    wanted = "\n".join(REQUIREMENTS)

    def ready() -> bool:
        return python.exists() and stamp.is_file() and stamp.read_text() == wanted

    if ready():
        return python
    with open(ROOT / ".venv-sdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, whoever asks first
        if ready():
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        for step in (
            [sys.executable, "-m", "venv", str(VENV)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *REQUIREMENTS,
            ],
        ):
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.skip(f"cannot build {VENV.name} for the SageMaker SDK: {exc}")
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip()[-800:]
                pytest.skip(f"cannot build {VENV.name} for the SageMaker SDK ({step[2]}): {tail}")
        stamp.write_text(wanted)
    return python
