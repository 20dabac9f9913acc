"""The process backend: contract environment, output lines, and stopping whole process trees."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from gateway.lifecycle.backends import BackendError, create_backend
from gateway.lifecycle.backends.process import ProcessBackend, ProcessHandle, reap_leftovers
from gateway.live import ContainerRuntime
from tests.gateway.processes import (
    alive,
    endpoint,
    only,
    quick_settings,
    shell,
    until,
    value_from,
    wait_ping,
)


async def start(
    backend: ProcessBackend, container: ContainerRuntime, tmp_path: Path, lines: list[str]
) -> ProcessHandle:
    base = tmp_path / "state" / container.hostname
    (base / "model").mkdir(parents=True, exist_ok=True)
    return await backend.start(
        container, model_dir=base / "model", base_dir=base, on_line=lines.append
    )


def test_contract_environment_working_dir_and_output(tmp_path: Path) -> None:
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    script = (
        'echo "port=$SAGEMAKER_BIND_TO_PORT model=$SM_MODEL_DIR base=$SAGEMAKER_BASE_DIR '
        'cwd=$(pwd) extra=$EXTRA unbuffered=$PYTHONUNBUFFERED host=$TANDEM_CONTAINER_HOST"; '
        "exec $SERVER"
    )
    environment = {"EXTRA": "from-spec", "SAGEMAKER_BIND_TO_PORT": "1"}
    container = only(
        endpoint(source=spec_dir, c1={"command": shell(script), "environment": environment})
    )
    backend = ProcessBackend(quick_settings(tmp_path / "state"))
    lines: list[str] = []

    async def main() -> None:
        handle = await start(backend, container, tmp_path, lines)
        try:
            await wait_ping(handle.url)
            await until(lambda: lines, what="first output line")
            assert handle.url.endswith(f":{value_from(lines, 'port')}")  # the spec cannot move it
            assert value_from(lines, "model") == str(tmp_path / "state" / "c1" / "model")
            assert value_from(lines, "base") == str(tmp_path / "state" / "c1")
            assert value_from(lines, "cwd") == str(spec_dir)
            assert value_from(lines, "extra") == "from-spec"
            assert value_from(lines, "unbuffered") == "1"
            assert value_from(lines, "host") == "127.0.0.1"  # framework servers: loopback only
        finally:
            code = await handle.stop(3.0)
        assert code == 128 + 15  # the contract server dies of the forwarded SIGTERM
        assert not handle.alive

    asyncio.run(main())


def test_stop_ends_the_containers_own_children(tmp_path: Path) -> None:
    container = only(endpoint(c1={"command": shell("sleep 300 & echo child=$!; exec $SERVER")}))
    backend = ProcessBackend(quick_settings(tmp_path / "state"))
    lines: list[str] = []

    async def main() -> None:
        handle = await start(backend, container, tmp_path, lines)
        await wait_ping(handle.url)
        await until(lambda: value_from(lines, "child"), what="child pid")
        child = int(value_from(lines, "child") or 0)
        assert alive(child)
        await handle.stop(3.0)
        await until(lambda: not alive(child), what="grandchild gone")

    asyncio.run(main())


def test_orphans_are_killed_when_the_container_exits(tmp_path: Path) -> None:
    # ``setsid`` takes the sleep out of the container's process group: only the subreaper sees it.
    script = "setsid sleep 300 & echo child=$!; sleep 0.5; exit 3"
    container = only(endpoint(c1={"command": shell(script)}))
    backend = ProcessBackend(quick_settings(tmp_path / "state"))
    lines: list[str] = []

    async def main() -> None:
        handle = await start(backend, container, tmp_path, lines)
        assert await handle.wait() == 3
        child = int(value_from(lines, "child") or 0)
        assert child > 0
        await until(lambda: not alive(child), what="orphan gone")

    asyncio.run(main())


def test_sigterm_ignored_means_sigkill_after_grace(tmp_path: Path) -> None:
    container = only(endpoint(c1={"command": shell("trap '' TERM; exec $SERVER")}))
    backend = ProcessBackend(quick_settings(tmp_path / "state", stop_grace=0.3))

    async def main() -> None:
        handle = await start(backend, container, tmp_path, [])
        await wait_ping(handle.url)
        assert await handle.stop(0.3) == 128 + 9
        second = await start(backend, container, tmp_path, [])
        await wait_ping(second.url)
        assert second.url == handle.url  # a restart keeps the port the HTTP side pools
        assert await second.kill() == 128 + 9

    asyncio.run(main())


def test_a_restart_takes_a_new_port_when_its_old_one_was_taken(tmp_path: Path) -> None:
    container = only(endpoint(c1={"command": shell("exec $SERVER")}))
    backend = ProcessBackend(quick_settings(tmp_path / "state"))

    async def main() -> None:
        first = await start(backend, container, tmp_path, [])
        await wait_ping(first.url)
        await first.stop(3.0)
        old = urlsplit(first.url).port
        with socket.socket() as squatter:  # another server took the port while it was down
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", old))
            squatter.listen()
            second = await start(backend, container, tmp_path, [])
            try:
                await wait_ping(second.url)
                assert urlsplit(second.url).port != old
            finally:
                await second.stop(3.0)

    asyncio.run(main())


@pytest.mark.sklearn
def test_a_framework_container_listens_on_loopback_only(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    fields = {"framework": "sklearn", "mode": "MultiModel", "model_data": str(store)}
    container = only(endpoint(c1=fields))
    backend = ProcessBackend(quick_settings(tmp_path / "state", start_timeout=60.0))

    async def main() -> None:
        handle = await start(backend, container, tmp_path, [])
        try:
            await wait_ping(handle.url, timeout=60.0)
            assert handle.pid is not None
            root = psutil.Process(handle.pid)
            listening = [
                c.laddr
                for p in [root, *root.children(recursive=True)]
                for c in p.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            ]
            assert listening, "no listening socket found"
            assert {a.ip for a in listening} == {"127.0.0.1"}, listening
        finally:
            await handle.stop(3.0)

    asyncio.run(main())


def test_unknown_program_is_reported_in_the_output(tmp_path: Path) -> None:
    container = only(endpoint(c1={"command": ["tandem-no-such-program", "--flag"]}))
    backend = ProcessBackend(quick_settings(tmp_path / "state"))
    lines: list[str] = []

    async def main() -> None:
        handle = await start(backend, container, tmp_path, lines)
        assert await handle.wait() == 127
        assert any("cannot run 'tandem-no-such-program'" in line for line in lines), lines

    asyncio.run(main())


def test_image_only_containers_need_another_backend(tmp_path: Path) -> None:
    container = only(endpoint(c1={"image": "registry/model:1"}))
    backend = ProcessBackend(quick_settings(tmp_path / "state"))
    with pytest.raises(
        BackendError, match=r"ep/c1: .*image-only container needs the docker backend"
    ):
        backend.check(container)


def test_backends_by_name(tmp_path: Path) -> None:
    settings = quick_settings(tmp_path / "state")
    assert isinstance(create_backend("process", settings), ProcessBackend)
    assert create_backend("docker", settings).name == "docker"  # connects only when used
    with pytest.raises(
        BackendError, match="unknown backend 'kubernetes'; choose one of: docker, external, process"
    ):
        create_backend("kubernetes", settings)


def test_reap_leftovers_kills_only_marked_processes(tmp_path: Path) -> None:
    state = f"/tmp/tandem-test-{uuid.uuid4()}"
    env = {**os.environ, "TANDEM_STATE": state}
    ours = subprocess.Popen(["sleep", "300"], env=env)
    other = subprocess.Popen(["sleep", "300"], env={**env, "TANDEM_STATE": state + "-other"})
    try:
        assert reap_leftovers(state) == 1
        assert not alive(ours.pid)
        assert alive(other.pid)
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()
