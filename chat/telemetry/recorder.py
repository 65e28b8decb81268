"""The recorder: the one call the message path makes (`record`), and the counters a
heartbeat sends. Sans-IO and O(1): a level check and an append to a bounded in-memory list;
never a wait, never I/O. The writer (chat/telemetry/client/service.py) takes what piled up every
second and persists it in one transaction (chat/telemetry/outbox.py).

When the list is full the event is dropped and counted by type: the next batch's
`health.dropped_total` says so, and the heartbeat's `msgs` totals still count the message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chat.telemetry.schema import MESSAGE_COUNTERS
from chat.telemetry.settings import allowed_types

MAX_PENDING = 10_000
"""Events held in memory between two flushes of the writer."""


@dataclass(frozen=True, slots=True)
class Recorded:
    type: str
    t: int
    """Wall clock, ms."""
    up_ms: int
    """Milliseconds since the session started."""
    net: str
    fields: Mapping[str, Any]
    sid: str | None = None
    """Another session's id (a crashed session's end, recorded at the next start)."""


class Recorder:
    def __init__(
        self,
        level: str,
        *,
        wall: Callable[[], float],
        monotonic: Callable[[], float],
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._started = monotonic()
        self._allowed = allowed_types(level)
        self.level = level
        self.max_pending = max_pending
        self.pending: list[Recorded] = []
        self.dropped: Counter[str] = Counter()
        """Drops since the last flush (the writer adds them to the persisted totals)."""
        self.messages: Counter[str] = Counter({name: 0 for name in MESSAGE_COUNTERS})
        """Heartbeat `msgs` counters since the last heartbeat."""
        self.net = "offline"
        self.paused = False

    def set_level(self, level: str) -> None:
        self.level = level
        self._allowed = allowed_types(level)

    def record(self, event_type: str, fields: Mapping[str, Any]) -> bool:
        """Keep an event for the writer; False when the level leaves it out or the list is
        full (then the drop is counted)."""
        if event_type not in self._allowed or self.paused:
            return False
        if len(self.pending) >= self.max_pending:
            self.dropped[event_type] += 1
            return False
        now = self._monotonic()
        self.pending.append(
            Recorded(
                event_type,
                int(self._wall() * 1000),
                int((now - self._started) * 1000),
                self.net,
                fields,
            )
        )
        return True

    def count(self, counter: str, n: int = 1) -> None:
        """A heartbeat counter (`msgs.sent`, ...): kept even when per-message events are not."""
        self.messages[counter] += n

    def take(self) -> tuple[list[Recorded], Counter[str]]:
        """What piled up since the last call, and the drops among it."""
        taken, self.pending = self.pending, []
        dropped, self.dropped = self.dropped, Counter()
        return taken, dropped

    def take_messages(self) -> dict[str, int]:
        counts = dict(self.messages)
        self.messages = Counter({name: 0 for name in MESSAGE_COUNTERS})
        return counts

    def wall_now(self) -> float:
        return self._wall()

    def uptime_ms(self) -> int:
        return int((self._monotonic() - self._started) * 1000)
