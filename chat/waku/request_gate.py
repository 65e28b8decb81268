"""How much request work one peer, and everyone together, may hold in a server (sans-IO).

Rate limits (ratelimit.py) bound requests per second; this bounds requests *at once*, which
is what memory and threads follow. Two stages, so that the cheapest work is shed first:

1. `enter(peer, now)` when a stream opens, before a byte of it is read: at most
   `per_peer` open requests per peer and `total` in the whole server. Beyond that the
   request is refused unread (the peer is "busy", or the server "full"): refusing it costs
   nothing, while everything already admitted has had work spent on it. Except a request
   that has sent nothing for `read_grace` seconds while the server waits for it
   (`reading`): when the server is full, the one waiting longest makes room for the
   newcomer (`take_evicted`), as an idle connection does for a new one. Streams opened and
   left silent (js-waku opens some eagerly; an attacker opens them from as many peer ids as
   he likes) would otherwise lock every query out until they time out.
2. `wait_turn(ticket, now)` once the request is read and is about to do the expensive part
   (a database query and a response of up to a few MB): at most `running` requests do that
   at once, and at most `running_per_peer` of one peer, in arrival order. A request whose
   turn has not come within `max_wait` seconds is shed (`give_up`); since every request
   waits equally long, the oldest go first.
3. The response: a peer that stops reading it is given up on (`slow_reader`, counted: the
   server resets its stream, see write_pace.py), which frees its turn at once.

`leave(ticket)` at the end, whatever happened. Every refusal is counted by reason in `shed`.
Time is injected (monotonic seconds), so the rules are tested without sleeping.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


class Shed(enum.Enum):
    """Why a request was refused; servers map these to their protocol's status codes."""

    PEER_BUSY = "peer_busy"
    """The peer already has `per_peer` requests open (429 for the peer)."""
    SERVER_FULL = "server_full"
    """The server already has `total` requests open (503: try another node)."""
    WAITED_TOO_LONG = "waited_too_long"
    """Admitted, but its turn to run did not come within `max_wait` (503)."""
    NEVER_SENT = "never_sent"
    """Admitted, but its request had not come `read_grace` seconds later when the server was
    full: dropped for a new request (its stream is reset)."""
    SLOW_READER = "slow_reader"
    """Answered, but the peer did not take the answer in time (write_pace.py): its stream
    is reset and its place freed."""


@dataclass(frozen=True, slots=True)
class GateLimits:
    per_peer: int = 8
    total: int = 128
    running: int = 8
    running_per_peer: int = 2
    max_wait: float = 10.0
    read_grace: float = 1.0

    def __post_init__(self) -> None:
        for name in ("per_peer", "total", "running", "running_per_peer"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_wait <= 0:
            raise ValueError(f"max_wait must be positive, not {self.max_wait}")
        if self.read_grace < 0:
            raise ValueError(f"read_grace must not be negative, not {self.read_grace}")

    def deadline(self, waiting_since: float) -> float:
        return waiting_since + self.max_wait


@dataclass(slots=True)
class Ticket:
    """One admitted request."""

    number: int
    peer: Hashable
    entered: float
    waiting_since: float | None = None
    running: bool = False
    left: bool = False
    reading_since: float | None = None
    """While the server waits for the request: since when."""
    evicted: bool = False
    """Dropped for a newcomer while its request had not come (it has left the gate)."""


@dataclass(slots=True)
class _PeerLoad:
    open: int = 0
    running: int = 0


class RequestGate:
    def __init__(self, limits: GateLimits | None = None) -> None:
        self.limits = limits or GateLimits()
        self.shed: Counter[Shed] = Counter()
        self._numbers = itertools.count()
        self._peers: dict[Hashable, _PeerLoad] = {}
        self._open = 0
        self._running = 0
        self._waiting: OrderedDict[int, Ticket] = OrderedDict()
        self._reading: OrderedDict[int, Ticket] = OrderedDict()
        """Tickets whose request the server waits for, longest first."""
        self._evicted: list[Ticket] = []

    @property
    def open(self) -> int:
        return self._open

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def enter(self, peer: Hashable, now: float) -> Ticket | Shed:
        """Admit a new request of `peer`, or say why not (counted in `shed`)."""
        load = self._peers.get(peer)
        if load is not None and load.open >= self.limits.per_peer:
            return self._refuse(Shed.PEER_BUSY)
        if self._open >= self.limits.total:
            victim = self._longest_reading(now)
            if victim is None:
                return self._refuse(Shed.SERVER_FULL)
            self._evict(victim)
            load = self._peers.get(peer)
        if load is None:
            load = self._peers[peer] = _PeerLoad()
        load.open += 1
        self._open += 1
        return Ticket(next(self._numbers), peer, now)

    def reading(self, ticket: Ticket, now: float) -> None:
        """The server waits for the ticket's request (it may be evicted from `read_grace`)."""
        if not ticket.left and ticket.reading_since is None:
            ticket.reading_since = now
            self._reading[ticket.number] = ticket

    def read(self, ticket: Ticket) -> None:
        """The server no longer waits for the request (it came, or the wait ended)."""
        ticket.reading_since = None
        self._reading.pop(ticket.number, None)

    def take_evicted(self) -> list[Ticket]:
        """Tickets evicted by `enter` since the last call: the server resets their streams."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def wait_turn(self, ticket: Ticket, now: float) -> bool:
        """Ask to run: True if the ticket runs now; else it waits until `admit_waiting`
        (called by `leave`) starts it, or `give_up` sheds it."""
        if ticket.left:
            raise ValueError("this request has left the gate")
        if not ticket.running and ticket.number not in self._waiting:
            ticket.waiting_since = now
            self._waiting[ticket.number] = ticket
            self._admit_waiting()
        return ticket.running

    def give_up(self, ticket: Ticket) -> bool:
        """Shed a ticket still waiting at its deadline; False if it got its turn after all."""
        if ticket.running or self._waiting.pop(ticket.number, None) is None:
            return False
        self.shed[Shed.WAITED_TOO_LONG] += 1
        return True

    def slow_reader(self, ticket: Ticket) -> None:
        """The ticket's answer was given up on: its reader stalled (it still has to leave)."""
        self.shed[Shed.SLOW_READER] += 1

    def leave(self, ticket: Ticket) -> list[Ticket]:
        """The request is over; returns the waiting tickets that got their turn because of it."""
        if ticket.left:
            return []
        ticket.left = True
        load = self._peers[ticket.peer]
        self._waiting.pop(ticket.number, None)
        self.read(ticket)
        if ticket.running:
            ticket.running = False
            load.running -= 1
            self._running -= 1
        load.open -= 1
        self._open -= 1
        if load.open == 0:
            del self._peers[ticket.peer]
        return self._admit_waiting()

    def _admit_waiting(self) -> list[Ticket]:
        started: list[Ticket] = []
        for number, ticket in list(self._waiting.items()):
            if self._running >= self.limits.running:
                break
            load = self._peers[ticket.peer]
            if load.running >= self.limits.running_per_peer:
                continue  # this peer waits; other peers behind it may run
            del self._waiting[number]
            ticket.running = True
            load.running += 1
            self._running += 1
            started.append(ticket)
        return started

    def _longest_reading(self, now: float) -> Ticket | None:
        """The ticket whose request the server has waited for longest, past its grace."""
        ticket = next(iter(self._reading.values()), None)
        since = ticket.reading_since if ticket is not None else None
        if since is None or now - since < self.limits.read_grace:
            return None
        return ticket

    def _evict(self, ticket: Ticket) -> None:
        self.shed[Shed.NEVER_SENT] += 1
        ticket.evicted = True
        self._evicted.append(ticket)
        # Not running, so leaving starts no waiting ticket.
        self.leave(ticket)

    def _refuse(self, reason: Shed) -> Shed:
        self.shed[reason] += 1
        return reason
