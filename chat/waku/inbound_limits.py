"""Which inbound connections the libp2p listener keeps (sans-IO, time injected).

A connection is *pending* from the moment the listener accepts it until its Noise and muxer
handshakes are done (unauthenticated: anyone can open thousands), then *open*. The rules:

- Pending connections are limited per source address (`max_pending_per_source`) and in
  total (`max_pending`). A new connection beyond either limit evicts a pending one: of that
  source (or, at the total limit, of the source holding the most), the *idle* ones first
  (nothing received yet: an attacker's held socket; a real dialer speaks at once), oldest
  first; a connection that has started its handshake is evicted only once it is older than
  `grace` (a stalled handshake), else the newcomer is refused instead. So holding sockets
  open cannot lock a legitimate dialer out: its connection pushes out an idle one.
- A pending connection must deliver its first bytes within `first_bytes_timeout` and
  finish its handshakes within `handshake_timeout` of being accepted (the slow-link
  budget of docs/architecture.md: Noise + muxer over 1 s latency and 30 % loss take 10-20 s,
  so that stays long; only silence is cut short).
- A source may hold at most `max_open_per_source` open inbound connections; beyond that
  new connections from it are refused at once.

Every eviction, refusal and timeout is counted by reason in `counts`.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter, OrderedDict
from dataclasses import dataclass


class Outcome(enum.Enum):
    """What happened to inbound connections; `counts` is keyed by these."""

    ACCEPTED = "accepted"
    UPGRADED = "upgraded"
    FAILED = "handshake_failed"
    EVICTED_SOURCE = "evicted_source_pending_full"
    EVICTED_TOTAL = "evicted_pending_full"
    REFUSED_PENDING = "refused_pending_full"
    REFUSED_SOURCE_OPEN = "refused_source_open_full"
    FIRST_BYTES_TIMEOUT = "first_bytes_timeout"
    HANDSHAKE_TIMEOUT = "handshake_timeout"


SHEDS = (
    Outcome.EVICTED_SOURCE,
    Outcome.EVICTED_TOTAL,
    Outcome.REFUSED_PENDING,
    Outcome.REFUSED_SOURCE_OPEN,
    Outcome.FIRST_BYTES_TIMEOUT,
    Outcome.HANDSHAKE_TIMEOUT,
)
"""The outcomes that shed a connection the node did not want to hold."""


MAX_CONNECTIONS = 300
"""Open connections in total, both directions (py-libp2p's default; nwaku's is 50)."""


@dataclass(frozen=True, slots=True)
class InboundLimits:
    max_pending: int = 64
    max_pending_per_source: int = 8
    max_open_per_source: int = 64
    first_bytes_timeout: float = 10.0
    handshake_timeout: float = 30.0
    grace: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_pending_per_source", "max_open_per_source"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("first_bytes_timeout", "handshake_timeout", "grace"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")


DEFAULT_LIMITS = InboundLimits()


class Phase(enum.Enum):
    IDLE = "idle"
    """Accepted; nothing received yet."""
    HANDSHAKE = "handshake"
    """Bytes received; Noise and muxer negotiation in progress."""
    OPEN = "open"
    """Authenticated and multiplexed."""


@dataclass(slots=True, eq=False)
class InboundConnection:
    number: int
    source: str
    accepted_at: float
    phase: Phase = Phase.IDLE
    done: bool = False


@dataclass(frozen=True, slots=True)
class Arrival:
    """The verdict on a new connection: keep it (`connection`) or not, and whom to evict."""

    connection: InboundConnection | None
    evicted: tuple[InboundConnection, ...] = ()
    refused: Outcome | None = None


class InboundAdmission:
    def __init__(self, limits: InboundLimits | None = None) -> None:
        self.limits = limits or InboundLimits()
        self.counts: Counter[Outcome] = Counter()
        self._numbers = itertools.count()
        # Per source, its pending connections oldest first.
        self._pending: dict[str, OrderedDict[int, InboundConnection]] = {}
        self._pending_total = 0
        self._open: Counter[str] = Counter()

    @property
    def pending(self) -> int:
        return self._pending_total

    @property
    def open(self) -> int:
        return sum(self._open.values())

    def pending_from(self, source: str) -> int:
        return len(self._pending.get(source, ()))

    def open_from(self, source: str) -> int:
        return self._open[source]

    def arrive(self, source: str, now: float) -> Arrival:
        """A connection from `source` was accepted at `now`."""
        limits = self.limits
        if self._open[source] >= limits.max_open_per_source:
            return self._refuse(Outcome.REFUSED_SOURCE_OPEN)
        evicted: list[InboundConnection] = []
        if self.pending_from(source) >= limits.max_pending_per_source:
            victim = self._victim(self._pending[source], now)
            if victim is None:
                return self._refuse(Outcome.REFUSED_PENDING)
            evicted.append(self._evict(victim, Outcome.EVICTED_SOURCE))
        elif self._pending_total >= limits.max_pending:
            victim = self._victim_anywhere(now)
            if victim is None:
                return self._refuse(Outcome.REFUSED_PENDING)
            evicted.append(self._evict(victim, Outcome.EVICTED_TOTAL))
        connection = InboundConnection(next(self._numbers), source, now)
        self._pending.setdefault(source, OrderedDict())[connection.number] = connection
        self._pending_total += 1
        self.counts[Outcome.ACCEPTED] += 1
        return Arrival(connection, tuple(evicted))

    def first_bytes(self, connection: InboundConnection) -> None:
        if connection.phase is Phase.IDLE and not connection.done:
            connection.phase = Phase.HANDSHAKE

    def deadline(self, connection: InboundConnection) -> float | None:
        """When the connection's current phase runs out of time (None once open)."""
        if connection.phase is Phase.IDLE:
            return connection.accepted_at + self.limits.first_bytes_timeout
        if connection.phase is Phase.HANDSHAKE:
            return connection.accepted_at + self.limits.handshake_timeout
        return None

    def upgraded(self, connection: InboundConnection) -> bool:
        """The handshakes are done; False if the connection was evicted meanwhile."""
        if connection.done or connection.phase is Phase.OPEN:
            return False
        self._forget_pending(connection)
        connection.phase = Phase.OPEN
        self._open[connection.source] += 1
        self.counts[Outcome.UPGRADED] += 1
        return True

    def timed_out(self, connection: InboundConnection) -> None:
        """Its deadline passed while pending (the driver closes it)."""
        if connection.done or connection.phase is Phase.OPEN:
            return
        reason = (
            Outcome.FIRST_BYTES_TIMEOUT
            if connection.phase is Phase.IDLE
            else Outcome.HANDSHAKE_TIMEOUT
        )
        self.counts[reason] += 1
        self.closed(connection)

    def failed(self, connection: InboundConnection) -> None:
        """The handshake failed (bad bytes, no common protocol, the peer hung up)."""
        if not connection.done and connection.phase is not Phase.OPEN:
            self.counts[Outcome.FAILED] += 1
        self.closed(connection)

    def closed(self, connection: InboundConnection) -> None:
        """The connection is gone, whatever the reason (idempotent)."""
        if connection.done:
            return
        connection.done = True
        if connection.phase is Phase.OPEN:
            self._open[connection.source] -= 1
            if self._open[connection.source] <= 0:
                del self._open[connection.source]
        else:
            self._forget_pending(connection)

    # -- eviction ---------------------------------------------------------------------------

    def _victim(
        self, pending: OrderedDict[int, InboundConnection], now: float
    ) -> InboundConnection | None:
        """Idle ones first, oldest first; then handshakes past their grace, oldest first."""
        for connection in pending.values():
            if connection.phase is Phase.IDLE:
                return connection
        for connection in pending.values():
            if now - connection.accepted_at >= self.limits.grace:
                return connection
        return None

    def _victim_anywhere(self, now: float) -> InboundConnection | None:
        # The source holding the most pending connections pays first.
        for source in sorted(self._pending, key=lambda s: -len(self._pending[s])):
            victim = self._victim(self._pending[source], now)
            if victim is not None:
                return victim
        return None

    def _evict(self, victim: InboundConnection, reason: Outcome) -> InboundConnection:
        self.counts[reason] += 1
        self.closed(victim)
        return victim

    def _forget_pending(self, connection: InboundConnection) -> None:
        pending = self._pending.get(connection.source)
        if pending is None or pending.pop(connection.number, None) is None:
            return
        self._pending_total -= 1
        if not pending:
            del self._pending[connection.source]

    def _refuse(self, reason: Outcome) -> Arrival:
        self.counts[reason] += 1
        return Arrival(None, refused=reason)
