"""The trio side of a RequestGate (request_gate.py): one per request/response server.

The core decides; this only parks a request until the core gives it a turn, or until its
wait deadline passes, and wakes the requests a finished one made room for; and it stops the
wait for a request that a newcomer evicted (`reading`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

import trio

from chat.waku.request_gate import GateLimits, RequestGate, Shed, Ticket


class ServerGate:
    def __init__(
        self,
        limits: GateLimits | None = None,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.core = RequestGate(limits)
        self.clock = clock
        self._turns: dict[int, trio.Event] = {}
        self._reading: dict[int, trio.CancelScope] = {}

    def enter(self, peer: Hashable) -> Ticket | Shed:
        ticket = self.core.enter(peer, self.clock())
        for evicted in self.core.take_evicted():
            scope = self._reading.pop(evicted.number, None)
            if scope is not None:
                scope.cancel()
        return ticket

    @contextmanager
    def reading(self, ticket: Ticket) -> Iterator[None]:
        """Around the wait for the ticket's request. When the server is full, a request that
        has not come within `read_grace` may be evicted for a new one: the wait is then
        cancelled, and `ticket.evicted` is set (do not answer; reset the stream)."""
        with trio.CancelScope() as scope:
            self._reading[ticket.number] = scope
            self.core.reading(ticket, self.clock())
            try:
                yield
            finally:
                self._reading.pop(ticket.number, None)
                self.core.read(ticket)

    async def turn(self, ticket: Ticket) -> bool:
        """Wait for the ticket's turn to do the expensive part; False if it was shed."""
        if self.core.wait_turn(ticket, self.clock()):
            return True
        assert ticket.waiting_since is not None
        event = self._turns[ticket.number] = trio.Event()
        try:
            with trio.move_on_at(self.core.limits.deadline(ticket.waiting_since)):
                await event.wait()
        finally:
            self._turns.pop(ticket.number, None)
        return ticket.running or not self.core.give_up(ticket)

    def slow_reader(self, ticket: Ticket) -> None:
        """The ticket's answer was given up on (its reader stalled); it still leaves."""
        self.core.slow_reader(ticket)

    def leave(self, ticket: Ticket) -> None:
        for started in self.core.leave(ticket):
            event = self._turns.get(started.number)
            if event is not None:
                event.set()

    @property
    def shed(self) -> dict[str, int]:
        """Refusals so far, by reason (for metrics)."""
        return {reason.value: self.core.shed[reason] for reason in Shed}
