"""The state folder's lock: one gateway per state folder, held for the gateway's life.

``tandem serve`` and the gateway that ``tandem batch --spec`` starts each hold their folder's
lock, so two never write one database or one folder of container logs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import TandemError


class StateDirBusy(TandemError):
    """Another ``tandem serve`` uses the same state folder (it holds the folder's lock)."""


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir/.lock`` for the gateway's life; the kernel drops it if the gateway dies."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateDirBusy(
                f"state folder {state_dir} is in use by another tandem serve (pid {holder}); "
                "stop it or pass another --state-dir"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
