"""Send-queue drops are counted and logged at most once a minute per peer."""

from __future__ import annotations

import logging

import pytest

from chat.waku.relay.driver import DriverLimits, RelayDriver, _Peer
from chat.waku.relay.router import Router, Send
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
