"""Every upstream client against a real contract server: bytes, headers, limits, failures."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from gateway.upstream import (
    Upstream,
    UpstreamBodyTooLarge,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    create_upstream,
)
from tests.gateway.harness import contract_servers
from tests.support import PYTHON, free_port

T = TypeVar("T")
KINDS = ["httptools", "aiohttp", "httpx"]


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    configs = {
        "echo": {"CONTRACT_MARKER": "!"},
        "headers": {"CONTRACT_MODE": "headers"},
        "peer": {"CONTRACT_MODE": "peer"},
        "big": {"CONTRACT_REPEAT": "1000"},
        "chunked": {"CONTRACT_REPEAT": "1000", "CONTRACT_CHUNKED": "1"},
        "slow": {"CONTRACT_SLEEP": "20"},
    }
    with contract_servers(configs) as started:
        yield started


def call(kind: str, url: str, use: Callable[[Upstream], Awaitable[T]]) -> T:
    async def run() -> T:
        upstream = create_upstream(kind, url)
        try:
            return await use(upstream)
        finally:
            await upstream.aclose()

    return asyncio.run(run())


def post(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 10.0,
    max_body: int = 1 << 20,
) -> Callable[[Upstream], Awaitable[UpstreamResponse]]:
    return lambda up: up.post(
        "/invocations", body, headers or {}, timeout=timeout, max_body=max_body
    )


@pytest.mark.parametrize("kind", KINDS)
def test_post_returns_status_headers_and_bytes(kind: str, urls: dict[str, str]) -> None:
    answer = call(kind, urls["echo"], post(b"\x00\x01binary", {"Content-Type": "a/b"}))
    assert answer.status == 200
    assert answer.body == b"\x00\x01binary!"
    assert answer.headers["content-type"] == "a/b"
    assert answer.headers["Content-Type"] == "a/b"


@pytest.mark.parametrize("kind", KINDS)
def test_sends_only_the_headers_given(kind: str, urls: dict[str, str]) -> None:
    answer = call(kind, urls["headers"], post(b"x", {"Accept": "text/csv"}))
    received = json.loads(answer.body)
    assert received["accept"] == "text/csv"
    for invented in ("content-type", "user-agent", "accept-encoding"):
        assert invented not in received


@pytest.mark.parametrize("kind", KINDS)
def test_keeps_the_connection_alive(kind: str, urls: dict[str, str]) -> None:
    async def many(up: Upstream) -> set[bytes]:
        return {(await post(b"x")(up)).body for _ in range(20)}

    assert len(call(kind, urls["peer"], many)) == 1  # every request came from one client port


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("server", ["big", "chunked"])
def test_body_limit_is_enforced_while_reading(kind: str, server: str, urls: dict[str, str]) -> None:
    # 1000 x 100 bytes back: fine under 200 kB, refused under 50 kB (with or without a length).
    assert len(call(kind, urls[server], post(b"y" * 100, max_body=200_000)).body) == 100_000
    with pytest.raises(UpstreamBodyTooLarge):
        call(kind, urls[server], post(b"y" * 100, max_body=50_000))


@pytest.mark.parametrize("kind", KINDS)
def test_timeout(kind: str, urls: dict[str, str]) -> None:
    with pytest.raises(UpstreamTimeout):
        call(kind, urls["slow"], post(b"x", timeout=0.3))


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_unavailable(kind: str) -> None:
    with pytest.raises(UpstreamUnavailable):
        call(kind, f"http://127.0.0.1:{free_port()}", post(b"x"))


@pytest.mark.parametrize("kind", KINDS)
def test_get(kind: str, urls: dict[str, str]) -> None:
    answer = call(kind, urls["echo"], lambda up: up.get("/ping", timeout=2.0, max_body=1024))
    assert answer.status == 200


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ValueError, match="aiohttp, httptools, httpx"):
        create_upstream("curl", "http://127.0.0.1:1")


def test_backends_are_imported_only_when_chosen() -> None:
    import subprocess

    code = (
        "import sys, gateway.upstream; "
        "print(*(m in sys.modules for m in ('aiohttp', 'httpx', 'httptools')))"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"], sys.modules.get("gateway.upstream")
