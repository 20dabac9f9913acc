"""``Held``, the serving core's wait for capacity (a variant at zero, a component at zero
copies): bounded per key, woken by ``notify``, let go at its deadline or at shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.serving.held import Held, HeldFull, variant_key, variant_of


def test_a_notify_wakes_every_request_held_on_its_key_and_no_other() -> None:
    async def run() -> tuple[list[bool], int]:
        held = Held(limit=10, wait=60)
        key, other = variant_key("ep", "AllTraffic"), variant_key("ep", "B")
        deadline = time.monotonic() + 60
        waiting = [asyncio.create_task(held.wait(key, deadline)) for _ in range(3)]
        elsewhere = asyncio.create_task(held.wait(other, deadline))
        while held.waiting(key) < 3 or held.waiting(other) < 1:
            await asyncio.sleep(0)
        held.notify(key)
        woken = await asyncio.gather(*waiting)
        left = held.waiting(other)
        elsewhere.cancel()
        return list(woken), left

    woken, left = asyncio.run(run())
    assert woken == [True, True, True] and left == 1


def test_the_bound_the_deadline_and_shutdown() -> None:
    async def run() -> None:
        held = Held(limit=1, wait=60)
        key = variant_key("ep", "AllTraffic")
        first = asyncio.create_task(held.wait(key, time.monotonic() + 60))
        while held.waiting(key) < 1:
            await asyncio.sleep(0)
        with pytest.raises(HeldFull):
            await held.wait(key, time.monotonic() + 60)
        assert await held.wait(variant_key("ep", "B"), time.monotonic()) is False  # past it
        held.close()
        assert await first is False  # let go, not woken by capacity
        assert await held.wait(key, time.monotonic() + 60) is False
        assert held.waiting(key) == 0

    asyncio.run(run())


def test_want_tells_the_listeners_and_is_remembered() -> None:
    held = Held(limit=1, wait=1)
    heard: list[tuple[str, bool]] = []
    held.listeners.append(lambda key, request: heard.append((key, request)))
    held.listeners.append(lambda key, request: 1 / 0)  # a broken listener is only logged
    key = variant_key("ep", "AllTraffic")
    assert not held.wanted(key, within=60)
    held.want(key, request=False)
    assert heard == [(key, False)] and held.wanted(key, within=60)
    assert variant_of(key) == ("ep", "AllTraffic") and variant_of("inference-component/x") is None
