"""The tests' one poller (tests/harness/waiting.py): returns as soon as the condition holds,
and gives up at its deadline naming what it waited for."""

from __future__ import annotations

import pytest
import trio
from harness.waiting import WaitTimedOut, wait_until
from trio.testing import MockClock


async def test_returns_as_soon_as_the_condition_holds(autojump_clock: MockClock) -> None:
    start = trio.current_time()
    looks = 0

    def third_look() -> bool:
        nonlocal looks
        looks += 1
        return looks == 3

    await wait_until(third_look)
    assert looks == 3
    assert trio.current_time() - start == pytest.approx(0.1)  # two intervals of 0.05 s


async def test_an_async_condition_is_awaited(autojump_clock: MockClock) -> None:
    opened = trio.current_time() + 2

    async def door_open() -> bool:
        await trio.lowlevel.checkpoint()
        return trio.current_time() >= opened

    await wait_until(door_open, 5)
    assert trio.current_time() == pytest.approx(opened, abs=0.05)


async def test_gives_up_at_the_deadline_naming_what_it_waited_for(
    autojump_clock: MockClock,
) -> None:
    start = trio.current_time()
    with pytest.raises(WaitTimedOut, match=r"^gave up after 3 s waiting for the door$"):
        await wait_until(lambda: False, 3, what="the door")
    assert trio.current_time() - start == pytest.approx(3)


async def test_without_a_name_the_lambdas_own_line_says_what(autojump_clock: MockClock) -> None:
    doors: list[str] = []
    with pytest.raises(WaitTimedOut, match=r'lambda: doors == \["open"\]'):
        await wait_until(lambda: doors == ["open"], 1)


async def test_a_callable_name_shows_the_state_when_it_gave_up(autojump_clock: MockClock) -> None:
    looks = 0

    def look() -> bool:
        nonlocal looks
        looks += 1
        return False

    with pytest.raises(WaitTimedOut, match=r"waiting for the door after 2\d looks$"):
        await wait_until(look, 1, what=lambda: f"the door after {looks} looks")
