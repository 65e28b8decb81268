"""Clients' periodic store scans are staggered: fifty members who start in the same second
must not keep scanning in the same second every minute (a store's global rate limit answers
such a burst with 429s). Each client runs its own StoreChecks on trio's mock clock."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import trio

from chat.reliability.store_checks import RangeQuery, StoreCheckParams, StoreChecks
from chat.session import MessengerSettings

MEMBERS = 50
RUN_FOR = 30 * 60.0
SETTLED_AFTER = 10 * 60.0


async def scan_times(params: StoreCheckParams) -> list[float]:
    """When each member's periodic scans went out, every member watching one topic from
    the same moment and each store answering at once."""
    times: list[float] = []
    start = trio.current_time()

    async def member(index: int) -> None:
        checks = StoreChecks(params, rng=random.Random(index))
        checks.watch("/waku/2/rs/16/200", ("/chinwag/1/community-x/proto",), None, start)
        while trio.current_time() < start + RUN_FOR:
            wakeup = checks.next_wakeup()
            assert wakeup is not None
            await trio.sleep_until(wakeup)
            now = trio.current_time()
            for query in checks.due(now):
                if isinstance(query, RangeQuery):
                    times.append(now - start)
                    checks.range_answer(query, [], now)

    async with trio.open_nursery() as nursery:
        for index in range(MEMBERS):
            nursery.start_soon(member, index)
    return times


def busiest_second(times: list[float]) -> int:
    return max(Counter(int(t) for t in times if t >= SETTLED_AFTER).values())


async def test_members_started_together_spread_their_scans(autojump_clock: Any) -> None:
    in_step = await scan_times(StoreCheckParams(scan_jitter=0.0))
    assert busiest_second(in_step) == MEMBERS  # every member in the same second
    client = MessengerSettings().messenger_config().store_checks  # what the faces run
    assert client.scan_jitter > 0
    staggered = await scan_times(client)
    assert busiest_second(staggered) <= MEMBERS // 5
    # Staggering spreads the scans; it does not make them rarer than about once a minute.
    assert len(staggered) >= 0.9 * len(in_step)
