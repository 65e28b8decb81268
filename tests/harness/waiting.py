"""Waiting in a test for a condition that I/O or timers make true: one helper for every test
and benchmark, with a deadline and a message that names what was awaited.

Poll only what no event announces (another process, a socket, a database another thread
writes); where the code under test offers an event or a channel, wait on that instead.

    await wait_until(lambda: len(received) == 3)            # a plain condition
    await wait_until(bob_has_the_message, 60)                # an async one, 60 s
    await wait_until(ready, what="the node to list 2 peers") # says so when it gives up

`wait_until` runs on trio (real time, or virtual time under `trio.testing.MockClock`);
`wait_until_in_app` on Textual's asyncio loop, through its pilot.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from textual.app import App
    from textual.pilot import Pilot

Condition = Callable[[], bool] | Callable[[], Awaitable[bool]]
What = str | Callable[[], str]
"""What was awaited, for the failure message; a callable is asked when the wait gives up
(so it can show the state at that moment)."""

DEFAULT_LIMIT = 30.0
INTERVAL = 0.05


class WaitTimedOut(AssertionError):
    """The condition did not hold before the deadline."""


async def wait_until(
    condition: Condition,
    limit: float = DEFAULT_LIMIT,
    *,
    what: What = "",
    interval: float = INTERVAL,
) -> None:
    """Return as soon as `condition()` (awaited when it is async) is true; raise WaitTimedOut
    naming what was awaited after `limit` seconds."""
    with trio.move_on_after(limit):
        while True:
            if await _holds(condition):
                return
            await trio.sleep(interval)  # nothing announces the change: look again
    raise WaitTimedOut(f"gave up after {limit:g} s waiting for {_describe(what, condition)}")


async def wait_until_in_app(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    limit: float = DEFAULT_LIMIT,
    *,
    what: What = "",
) -> None:
    """`wait_until` for a Textual app under test: lets the app run between looks, and shows
    the screen when it gives up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            raise WaitTimedOut(
                f"gave up after {limit:g} s waiting for {_describe(what, condition)}; "
                f"the screen:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(INTERVAL)


def screen_text(app: App[Any]) -> str:
    """What the app's terminal shows right now, as plain text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text.rstrip() for strip in strips)


async def _holds(condition: Condition) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def _describe(what: What, condition: Callable[..., object]) -> str:
    if callable(what):
        return what()
    if what:
        return what
    name = getattr(condition, "__qualname__", repr(condition))
    if "<lambda>" not in name:
        return name
    try:  # the lambda's own line says best what it waited for
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return name
