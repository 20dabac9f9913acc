"""``requirements.txt`` beside the user's code, as SageMaker's framework containers treat it.

An image of its own installs it with pip before the code is imported
(``TANDEM_INSTALL_REQUIREMENTS``, set by the docker backend). A container that shares its Python
with others (the process backend) must not change it: there, what the file lists must be
installed already, and what is not is a load error naming it, rather than code that fails later
on an import.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from containers.errors import ModelLoadError

log = logging.getLogger(__name__)

FILE = "requirements.txt"
#: Seconds pip may take (SageMaker's containers give it no limit; a hung index must not hang us).
INSTALL_TIMEOUT = 900.0
_done: set[Path] = set()


def ensure(code_dir: Path, *, install: bool) -> None:
    """Install (``install``) or check ``code_dir/requirements.txt``, once per folder."""
    path = (code_dir / FILE).resolve()
    if path in _done or not path.is_file():
        return
    if install:
        _install(path)
    else:
        missing = unmet(path)
        if missing:
            raise ModelLoadError(
                f"{FILE} in {code_dir} lists {', '.join(missing)}, not installed here, and this "
                "container shares its Python so it installs nothing: install them beside Tandem, "
                "or serve the model with the docker backend (TANDEM_BACKEND=docker)"
            )
    _done.add(path)


def unmet(path: Path) -> list[str]:
    """The requirements in ``path`` that the running Python does not satisfy (pip's options and
    lines that are not requirements, such as ``-e`` or URLs, count as unmet: they need pip)."""
    missing = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(repr(line[:100]))
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (found {version})")
    return missing


def _install(path: Path) -> None:
    log.info("installing %s", path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-input", "-r", str(path)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelLoadError(f"pip install -r {FILE} failed: {exc}") from exc
    for line in (done.stdout + done.stderr).splitlines()[-20:]:
        log.info("pip: %s", line)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ModelLoadError(f"pip install -r {FILE} failed (exit {done.returncode}): {last}")
