"""The metrics endpoint under issue 13 item 9's attack: a hundred connections that send
nothing (or half a request) used to fill its 16 slots, and scrapes failed until they timed
out. Timed in virtual time (trio's autojump clock): a scrape that must not wait for any
timeout gets less virtual time than the shortest one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
import trio
from harness.attack import (
    exchange,
    hold_connections,
    read_until_closed,
    status_of,
    still_open,
)

from chat.waku.metrics import READ_TIMEOUT, Metric, MetricsServer

SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
PROMPTLY = 1.0


async def _collect() -> Sequence[Metric]:
    return [Metric.single("chinwag_test_up", "gauge", "Up.", 1)]


@pytest.fixture
async def metrics() -> AsyncIterator[MetricsServer]:
    server = MetricsServer(_collect, "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        nursery.cancel_scope.cancel()


async def test_a_hundred_slow_connections_cannot_blind_the_metrics(
    metrics: MetricsServer, autojump_clock: trio.abc.Clock
) -> None:
    address, port = metrics.bound
    idle = await hold_connections(address, port, 50)
    slow = await hold_connections(address, port, 50, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    with trio.fail_after(PROMPTLY):
        for _ in range(3):
            response = await exchange(address, port, SCRAPE)
            assert status_of(response) == 200 and response.endswith(b"chinwag_test_up 1\n")
    assert metrics.scrapes == 3
    # The longest waiting connections made room; the newest few are still held.
    still = [await still_open(stream) for stream in idle + slow]
    assert not any(still[:80]) and sum(still) <= metrics.max_connections
    for stream in idle + slow:
        await stream.aclose()


async def test_a_slow_request_is_dropped_after_the_read_timeout(
    metrics: MetricsServer, autojump_clock: trio.abc.Clock
) -> None:
    address, port = metrics.bound
    [stream] = await hold_connections(address, port, 1, b"GET /metr")
    started = trio.current_time()
    with trio.fail_after(3 * READ_TIMEOUT):
        answer = await read_until_closed(stream)
    assert status_of(answer) == 408
    assert trio.current_time() - started <= READ_TIMEOUT + 1
    await stream.aclose()
