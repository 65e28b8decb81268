"""Send-queue drops are counted and logged at most once a minute per peer."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from chat.waku.relay.core import Router, Send
from chat.waku.relay.driver import DriverLimits, RelayDriver, _Peer
from chat.waku.relay.sendqueue import SendQueue


async def test_drops_are_counted_and_warned_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    driver = RelayDriver(None, Router(), limits=DriverLimits(), clock=lambda: now[0])
    driver._peers["p"] = _Peer(SendQueue(max_frames=2, max_bytes=1000))
    caplog.set_level(logging.WARNING, logger="chat.waku.relay.driver")
    for _ in range(5):
        driver.router._actions.append(Send("p", b"frame"))
    assert driver._dispatch() == 2
    assert driver.counters.send_queue_drops == 3
    now[0] = 30.0
    driver.router._actions.append(Send("p", b"frame"))
    driver._dispatch()
    now[0] = 61.0
    driver.router._actions.append(Send("p", b"frame"))
    driver._dispatch()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "dropped 1 frame" in warnings[0] and "dropped 4 frame" in warnings[1]
    assert driver.counters.send_queue_drops == 5


def _driver_with_a_full_queue() -> tuple[RelayDriver, SendQueue]:
    driver = RelayDriver(None, Router(), limits=DriverLimits(publish_wait=1.0))
    queue = SendQueue(max_frames=2, max_bytes=1000)
    driver._peers["p"] = _Peer(queue)
    driver.router.topic_peers["t"] = {"p"}
    queue.put(b"1")
    queue.put(b"2")
    return driver, queue


async def test_wait_for_room_waits_for_a_subscribed_peer_to_drain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver, queue = _driver_with_a_full_queue()
    assert await driver.wait_for_room("other")  # nobody of ours on that topic
    results: list[bool] = []

    async def publisher() -> None:
        results.append(await driver.wait_for_room("t"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        await trio.sleep(0.5)
        assert results == []
        await queue.get_batch(1)
    assert results == [True]


async def test_wait_for_room_gives_up_on_a_stalled_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver, _ = _driver_with_a_full_queue()
    start = trio.current_time()
    assert not await driver.wait_for_room("t")
    assert trio.current_time() - start == pytest.approx(1.0)
