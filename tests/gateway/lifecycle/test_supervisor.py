"""The supervisor: all-or-nothing start, restarts with backoff on the same URL, output routing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import psutil
import pytest

from gateway.lifecycle.backends.process import ProcessBackend
from gateway.lifecycle.supervisor import StartError, Supervisor, backoff_attempt, restart_delay
from gateway.live import ContainerState, Instance
from gateway.settings import GatewaySettings
from tests.gateway.processes import alive, endpoint, quick_settings, shell, until, wait_ping


def supervisor(endpoints: list[Instance], settings: GatewaySettings) -> Supervisor:
    return Supervisor(endpoints, ProcessBackend(settings), settings)


def container_pid(sup: Supervisor, name: str) -> int:
    """The container process itself (the launcher's child)."""
    handle = sup.handles[name]
    assert handle is not None and handle.pid is not None
    (child,) = psutil.Process(handle.pid).children()
    return child.pid


def test_start_unpacks_models_and_serves_every_container(tmp_path: Path) -> None:
    model = tmp_path / "specs" / "model"
    model.mkdir(parents=True)
    (model / "weights.txt").write_text("w")
    script = 'echo "files=$(ls $SM_MODEL_DIR)"; exec $SERVER'
    ep = endpoint(
        source=tmp_path / "specs",
        a={"command": shell(script), "model_data": "model"},
        b={"command": shell("exec $SERVER")},
    )
    settings = quick_settings(tmp_path / "state")
    sup = supervisor([ep], settings)

    async def main() -> None:
        await sup.start()
        try:
            assert ep.healthy
            assert [c.state for c in ep.containers] == [ContainerState.HEALTHY] * 2
            for c in ep.containers:
                await wait_ping(c.url, timeout=2)
            assert (
                tmp_path / "state" / "endpoints" / "ep" / "ep" / "a" / "model" / "weights.txt"
            ).read_text() == "w"
        finally:
            await sup.stop()
        assert [c.state for c in ep.containers] == [ContainerState.STOPPED] * 2
        log = (tmp_path / "state" / "endpoints" / "ep" / "ep" / "a" / "container.log").read_text()
        assert "files=weights.txt" in log

    asyncio.run(main())


def test_a_container_that_never_gets_healthy_fails_the_start(tmp_path: Path) -> None:
    ep = endpoint(
        good={"command": shell("exec $SERVER")},
        sick={
            "command": shell("echo warming up the sick one; exec $SERVER"),
            "environment": {"CONTRACT_PING_STATUS": "500"},
        },
    )
    sup = supervisor([ep], quick_settings(tmp_path / "state", start_timeout=1.5))

    async def main() -> None:
        with pytest.raises(StartError) as raised:
            await sup.start()
        message = str(raised.value)
        assert "ep/sick: did not answer /ping with 200 within 1.5s" in message
        assert "warming up the sick one" in message
        assert "ep/good" not in message
        # Nothing is left running: the healthy one was stopped too.
        assert all(h is None or not h.alive for h in sup.handles.values())
        assert ep.containers[1].state is not ContainerState.HEALTHY

    asyncio.run(main())


def test_a_container_that_exits_fails_the_start_with_its_output(tmp_path: Path) -> None:
    ep = endpoint(broken={"command": shell("echo 'bad config: no model' >&2; exit 3")})
    sup = supervisor([ep], quick_settings(tmp_path / "state"))

    async def main() -> None:
        with pytest.raises(StartError, match="ep/broken: exited with code 3") as raised:
            await sup.start()
        assert "bad config: no model" in str(raised.value)

    asyncio.run(main())


def test_bad_model_data_fails_before_anything_starts(tmp_path: Path) -> None:
    ep = endpoint(
        a={"command": shell("touch started; exec $SERVER"), "model_data": str(tmp_path / "nope")},
        b={"command": shell("exec $SERVER"), "model_data": "gs://bucket/model.tar.gz"},
    )
    sup = supervisor([ep], quick_settings(tmp_path / "state"))

    async def main() -> None:
        with pytest.raises(StartError) as raised:
            await sup.start()
        assert raised.value.problems == [
            f"ep/a: model_data: {tmp_path / 'nope'}: no such file or directory",
            "ep/b: model_data: gs://bucket/model.tar.gz: gs:// model_data is not supported yet; "
            "use a local directory, a .tar.gz archive, a file:// or an s3:// URL",
        ]
        assert all(h is None for h in sup.handles.values())

    asyncio.run(main())


def test_a_killed_container_is_restarted_on_the_same_url(tmp_path: Path) -> None:
    ep = endpoint(a={"command": shell("echo started; exec $SERVER")})
    # A one-second backoff keeps the container down long enough to observe it.
    settings = quick_settings(tmp_path / "state", restart_backoff=1.0)
    sup = supervisor([ep], settings)
    (container,) = ep.containers

    async def main() -> None:
        await sup.start()
        try:
            url, first = container.url, container_pid(sup, "ep/a")
            os.kill(first, signal.SIGKILL)
            await until(lambda: container.state is not ContainerState.HEALTHY, what="not healthy")
            assert container.state is ContainerState.RESTARTING
            await until(lambda: container.healthy, what="healthy again")
            assert container.restarts == 1
            assert container.url == url
            await wait_ping(url, timeout=2)
            assert container_pid(sup, "ep/a") != first
            log = (
                tmp_path / "state" / "endpoints" / "ep" / "ep" / "a" / "container.log"
            ).read_text()
            assert log.count("started") == 2  # a restart appends to the log
        finally:
            await sup.stop()

    asyncio.run(main())


def test_a_hung_container_is_restarted_after_failed_health_checks(tmp_path: Path) -> None:
    ep = endpoint(a={"command": shell("exec $SERVER")})
    settings = quick_settings(
        tmp_path / "state", ping_timeout=0.2, health_failures=2, stop_grace=0.5
    )
    sup = supervisor([ep], settings)
    (container,) = ep.containers

    async def main() -> None:
        await sup.start()
        try:
            hung = container_pid(sup, "ep/a")
            os.kill(hung, signal.SIGSTOP)  # alive, but no longer answering
            await until(lambda: container.restarts == 1 and container.healthy, what="restarted")
            assert not alive(hung)
        finally:
            await sup.stop()

    asyncio.run(main())


def test_output_lines_reach_the_gateway_log_with_a_prefix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tandem.container")
    ep = endpoint(name="shop", scorer={"command": shell("echo hello from scorer; exec $SERVER")})
    sup = supervisor([ep], quick_settings(tmp_path / "state"))

    async def main() -> None:
        await sup.start()
        try:
            await until(
                lambda: "shop/scorer | hello from scorer" in caplog.messages, what="log line"
            )
        finally:
            await sup.stop()

    asyncio.run(main())


def test_restart_backoff_doubles_up_to_the_cap() -> None:
    delays = [restart_delay(attempt, 0.5, 30.0) for attempt in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert restart_delay(5000, 0.5, 30.0) == 30.0  # a days-long crash loop does not overflow


def test_restart_backoff_resets_after_a_healthy_while() -> None:
    assert backoff_attempt(6, healthy_for=5.0, reset_after=60.0) == 6  # still crash-looping
    assert backoff_attempt(6, healthy_for=60.0, reset_after=60.0) == 0
    assert restart_delay(backoff_attempt(6, 61.0, 60.0), 0.5, 30.0) == 0.5
