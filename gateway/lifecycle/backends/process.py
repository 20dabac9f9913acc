"""The embedded default backend: every container is a local process on a free localhost port.

Each container runs under a small launcher (``_launcher.py``) that ties its whole process tree to
the gateway's life, so no container outlives the gateway, even one killed with SIGKILL. Each process
carries ``TANDEM_STATE`` in its environment, which lets a later gateway find and kill leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from gateway.container_env import CODE_FOLDER, SUBMIT_ENV, spec_environment, submitted_code
from gateway.lifecycle.backends.base import BackendError, LineSink, can_listen
from gateway.live import ContainerRuntime
from gateway.settings import GatewaySettings

logger = logging.getLogger("tandem.backend")

LAUNCHER = Path(__file__).with_name("_launcher.py")
#: The package root, put on PYTHONPATH so ``python -m containers`` works from any folder.
ROOT = Path(__file__).resolve().parents[3]
MAX_LINE = 16 * 1024
#: Where the framework containers listen: this machine only, never the network.
LISTEN_HOST = "127.0.0.1"
#: Seconds the gateway waits beyond the launcher's own grace before killing the launcher itself.
STOP_MARGIN = 5.0


def free_port(host: str = LISTEN_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ProcessHandle:
    """One launched container process and the task pumping its output into ``on_line``."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str, on_line: LineSink) -> None:
        self._proc = proc
        self._url = url
        assert proc.stdout is not None
        self._pump = asyncio.create_task(_pump_lines(proc.stdout, on_line))
        self._tree = ProcessTree(proc.pid)

    @property
    def url(self) -> str:
        return self._url

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    def memory(self) -> int | None:
        return self._tree.rss() if self.alive else None

    async def wait(self) -> int:
        code = await self._proc.wait()
        # Output may still sit in the pipe; a grandchild may hold it open, so bound the wait.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pump), timeout=1.0)
        return _exit_code(code)

    async def stop(self, grace: float) -> int:
        # The launcher forwards SIGTERM to the container's group and SIGKILLs it after ``grace``.
        self._signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.wait(), timeout=grace + STOP_MARGIN)
        except TimeoutError:
            logger.warning("launcher %s did not stop in time; killing it", self.pid)
            self._signal(signal.SIGKILL)  # the container dies with it (PR_SET_PDEATHSIG)
            return await self.wait()

    async def kill(self) -> int:
        self._signal(signal.SIGUSR1)  # the launcher's "SIGKILL the group now"
        try:
            return await asyncio.wait_for(self.wait(), timeout=STOP_MARGIN)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            return await self.wait()

    def _signal(self, sig: int) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)


class ProcessBackend:
    name = "process"

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._state = str(settings.state_dir.resolve())
        #: The port each container last had: a restart keeps it (and the URL the HTTP side pools)
        #: unless another process took it while the container was down.
        self._ports: dict[tuple[str, str], int] = {}

    def check(self, container: ContainerRuntime) -> None:
        spec = container.spec
        if spec.framework is None and spec.command is None:
            raise BackendError(
                f"{container.endpoint}/{container.hostname}: the process backend runs a framework "
                "or a command; an image-only container needs the docker backend"
            )

    def command(self, container: ContainerRuntime) -> list[str]:
        spec = container.spec
        if spec.command is not None:
            return list(spec.command)
        assert spec.framework is not None
        return [sys.executable, "-m", "containers", "serve", "--framework", str(spec.framework)]

    def environment(
        self, container: ContainerRuntime, *, port: int, model_dir: Path, base_dir: Path
    ) -> dict[str, str]:
        """The gateway's env, then the spec's, then the contract's (which must win)."""
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("TANDEM_")]:
            del env[key]
        # Like an activated venv: a command's ``python`` is the gateway's interpreter.
        env["PATH"] = os.pathsep.join(
            filter(None, [str(Path(sys.executable).parent), env.get("PATH")])
        )
        if container.spec.framework is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(spec_environment(container, self._settings.async_max_bytes))
        env.update(
            SAGEMAKER_BIND_TO_PORT=str(port),
            # Loopback only: the gateway is the way in (and checks who calls, when asked to).
            TANDEM_CONTAINER_HOST=LISTEN_HOST,
            SM_MODEL_DIR=str(model_dir),
            SAGEMAKER_BASE_DIR=str(base_dir),
            PYTHONUNBUFFERED="1",
            TANDEM_STATE=self._state,
            TANDEM_CONTAINER=f"{container.endpoint}/{container.hostname}",
        )
        if submitted_code(container) is not None:  # the supervisor fetched it there
            env[SUBMIT_ENV] = str(base_dir / CODE_FOLDER)
        return env

    async def start(
        self, container: ContainerRuntime, *, model_dir: Path, base_dir: Path, on_line: LineSink
    ) -> ProcessHandle:
        self.check(container)
        key = (container.deployment, container.hostname)
        port = self._ports.get(key)
        if port is None or not can_listen(port):
            port = self._ports[key] = free_port()
        cwd = base_dir
        if container.spec.command is not None and container.source is not None:
            cwd = container.source
        env = self.environment(container, port=port, model_dir=model_dir, base_dir=base_dir)
        argv = [str(LAUNCHER), str(os.getpid()), str(self._settings.stop_grace), "--"]
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                *argv,
                *self.command(container),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"{key[0]}/{key[1]}: cannot start: {exc}") from exc
        logger.debug("%s/%s: launcher pid %s on port %s", *key, proc.pid, port)
        return ProcessHandle(proc, f"http://{LISTEN_HOST}:{port}", on_line)

    async def reap_leftovers(self) -> int:
        return await asyncio.to_thread(reap_leftovers, self._state)


class ProcessTree:
    """Resident bytes of a process and every process below it, read on the event loop before
    and after each multi-model load: finding the children scans every process of the machine
    (about 1 ms), so the list is kept for ``REFRESH`` seconds, or until one of them is gone."""

    REFRESH = 2.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._procs: list[Any] = []
        self._found = float("-inf")

    def rss(self) -> int | None:
        """None once the process is gone."""
        import psutil

        if time.monotonic() - self._found > self.REFRESH or not self._procs:
            try:
                root = psutil.Process(self.pid)
                self._procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return None
            self._found = time.monotonic()
        total = 0
        for proc in self._procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                self._found = float("-inf")  # one has gone: find them again next time
        return total


def reap_leftovers(state: str) -> int:
    """Kill every process carrying ``TANDEM_STATE=state``: what a SIGKILLed gateway left behind."""
    import psutil  # only here: scanning processes is rare and psutil is not needed to serve

    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get("TANDEM_STATE") == state:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(found, timeout=5)
    if found:
        logger.warning("killed %d leftover container process(es) from %s", len(found), state)
    return len(found)


async def _pump_lines(stream: asyncio.StreamReader, on_line: LineSink) -> None:
    """Feed each output line to ``on_line``; overlong lines are cut, undecodable bytes replaced."""
    buffer = b""
    while chunk := await stream.read(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        if len(buffer) > MAX_LINE:
            lines.append(buffer[:MAX_LINE])
            buffer = b""
        for line in lines:
            _emit(line, on_line)
    if buffer:
        _emit(buffer, on_line)


def _emit(line: bytes, on_line: LineSink) -> None:
    try:
        on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))
    except Exception:  # a broken sink must not stop the pump (the pipe would fill and block)
        logger.exception("log sink failed")


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code
