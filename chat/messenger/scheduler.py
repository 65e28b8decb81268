"""One task for every timer of the messenger.

Each feature with timers (outbox attempts, request re-sends, SDS syncs, store checks, the
batched saves) registers itself as a `Timed`: it says when it next needs to run and does
what is due when asked. The scheduler knows none of them by name: it sleeps until the
earliest wake-up (or `IDLE_WAKEUP`, or until someone calls `wake`), then lets every feature
run, in the order they registered, under the messenger's one lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from chat.messenger.config import IDLE_WAKEUP


class Timed(Protocol):
    def next_wakeup(self) -> float | None:
        """When this feature next has something due (the messenger's clock), or None."""
        ...

    async def run_due(self, now: float) -> None:
        """Do whatever is due at `now`. Called under the messenger's lock."""
        ...


class Scheduler:
    def __init__(
        self, lock: trio.Lock, clock: Callable[[], float], idle_wakeup: float = IDLE_WAKEUP
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._idle_wakeup = idle_wakeup
        self._features: list[Timed] = []
        self._woken = trio.Event()

    def register(self, feature: Timed) -> None:
        self._features.append(feature)

    def wake(self) -> None:
        """Look at the timers again now (a command added work, or moved a deadline)."""
        self._woken.set()

    def next_wakeup(self) -> float | None:
        times = [t for t in (f.next_wakeup() for f in self._features) if t is not None]
        return min(times) if times else None

    async def run_due(self, now: float) -> None:
        for feature in self._features:
            await feature.run_due(now)

    async def run(self) -> None:
        while True:
            self._woken = trio.Event()
            now = self._clock()
            async with self._lock:
                await self.run_due(now)
            wake_at = self.next_wakeup()
            delay = self._idle_wakeup if wake_at is None else max(0.0, wake_at - self._clock())
            with trio.move_on_after(min(delay, self._idle_wakeup)):
                await self._woken.wait()
