"""The dispatcher on its own, against real contract servers: chains, deadlines, pooled clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.calls import InvocationRequest, InvocationResult
from gateway.errors import ModelError, ServiceUnavailable
from gateway.live import ContainerState, Instance
from gateway.serving.dispatch import Dispatcher
from gateway.settings import MAX_PAYLOAD_BYTES
from tests.gateway.harness import contract_servers, endpoint


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    configs = {
        "a": {"CONTRACT_MARKER": "|a"},
        "b": {"CONTRACT_MODE": "upper", "CONTRACT_MARKER": "|b"},
        "e500": {"CONTRACT_STATUS": "500"},
        "slow": {"CONTRACT_SLEEP": "0.6", "CONTRACT_MARKER": "|slow"},
    }
    with contract_servers(configs) as started:
        yield started


def chain(urls: dict[str, str], *servers: str, **spec: Any) -> Instance:
    containers = [{"command": [s]} for s in servers]
    return endpoint(urls, name="test", containers=containers, **spec)


def run(
    runtime: Instance,
    request: InvocationRequest,
    timings: list[tuple[str, float]] | None = None,
    upstream: str = "aiohttp",
) -> InvocationResult:
    async def go() -> InvocationResult:
        dispatcher = Dispatcher(upstream=upstream, max_payload=MAX_PAYLOAD_BYTES)
        dispatcher.open([runtime])
        try:
            return await dispatcher.invoke(runtime, request, timings)
        finally:
            await dispatcher.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("upstream", ["aiohttp", "httpx"])
def test_serial_chain_with_either_client(upstream: str, urls: dict[str, str]) -> None:
    result = run(
        chain(urls, "a", "b", "a"), InvocationRequest(b"x", "text/plain"), upstream=upstream
    )
    assert result.body == b"X|A|b|a"
    assert result.content_type == "text/plain"
    assert [name for name, _ in result.timings] == ["container-1", "container-2", "container-3"]
    assert result.model_seconds == pytest.approx(sum(s for _, s in result.timings))


def test_timings_are_kept_when_a_step_fails(urls: dict[str, str]) -> None:
    timings: list[tuple[str, float]] = []
    with pytest.raises(ModelError) as info:
        run(chain(urls, "a", "e500"), InvocationRequest(b"x"), timings)
    assert info.value.original_status == 500
    assert [name for name, _ in timings] == ["container-1", "container-2"]


def test_container_not_in_service_fails_before_any_step(urls: dict[str, str]) -> None:
    runtime = chain(urls, "a", "b")
    runtime.containers[1].state = ContainerState.STARTING
    timings: list[tuple[str, float]] = []
    with pytest.raises(ServiceUnavailable, match="container-2 of endpoint test is Starting"):
        run(runtime, InvocationRequest(b"x"), timings)
    assert timings == []


def test_deadline_is_shared_by_the_steps(urls: dict[str, str]) -> None:
    # Each step takes 0.6 s, within a 1 s deadline alone but not together.
    assert run(chain(urls, "slow", timeout=1.0), InvocationRequest(b"x")).body == b"x|slow"
    with pytest.raises(ModelError, match="container container-2") as info:
        run(chain(urls, "slow", "slow", timeout=1.0), InvocationRequest(b"x"))
    assert info.value.original_status == 0
    assert "step is 2 of 2" in info.value.message


def test_client_follows_the_container_to_a_new_url(urls: dict[str, str]) -> None:
    runtime = chain(urls, "a")
    container = runtime.containers[0]

    async def go() -> list[bytes]:
        dispatcher = Dispatcher(max_payload=MAX_PAYLOAD_BYTES)
        dispatcher.open([runtime])
        first = dispatcher.upstream(container)
        answers = [(await dispatcher.invoke(runtime, InvocationRequest(b"x"))).body]
        container.url = urls["b"]  # what the supervisor does after a restart on a new port
        answers.append((await dispatcher.invoke(runtime, InvocationRequest(b"x"))).body)
        second = dispatcher.upstream(container)
        assert second is not first
        await dispatcher.aclose()
        assert dispatcher.upstream(container) is not second  # a closed client is dropped
        await dispatcher.aclose()
        return answers

    assert asyncio.run(go()) == [b"x|a", b"X|b"]
