"""The scheduler runs any timed feature at its wake-up, knowing none by name."""

from __future__ import annotations

from typing import Any

import trio

from chat.messenger.scheduler import Scheduler


class Alarms:
    """A timed feature: alarms at given times, each noted when it rang."""

    def __init__(self, name: str, log: list[tuple[str, float]], lock: trio.Lock) -> None:
        self.name = name
        self.times: list[float] = []
        self._log = log
        self._lock = lock

    def set(self, *times: float) -> None:
        self.times = sorted([*self.times, *times])

    def next_wakeup(self) -> float | None:
        return self.times[0] if self.times else None

    async def run_due(self, now: float) -> None:
        assert self._lock.locked()  # features run under the messenger's one lock
        while self.times and self.times[0] <= now:
            self.times.pop(0)
            self._log.append((self.name, now))


async def test_each_feature_runs_at_its_own_wake_up_in_registration_order(
    autojump_clock: Any,
) -> None:
    lock = trio.Lock()
    log: list[tuple[str, float]] = []
    scheduler = Scheduler(lock, trio.current_time, idle_wakeup=30.0)
    first, second = Alarms("first", log, lock), Alarms("second", log, lock)
    first.set(5.0, 12.0)
    second.set(7.0, 12.0)
    scheduler.register(first)
    scheduler.register(second)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.run)
        await trio.sleep(20)
        assert log == [
            ("first", 5.0),
            ("second", 7.0),
            ("first", 12.0),
            ("second", 12.0),
        ]

        # A new deadline is seen at once when the scheduler is woken...
        first.set(21.0)
        scheduler.wake()
        await trio.sleep(2)
        assert log[-1] == ("first", 21.0)
        # ...and otherwise at the next idle look (at most idle_wakeup after the last pass).
        second.set(22.0)
        await trio.sleep(40)
        assert log[-1] == ("second", 21.0 + 30.0)
        nursery.cancel_scope.cancel()
