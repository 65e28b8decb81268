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
- Open connections in total (both directions) are limited by the node (`max_connections`).
  When an inbound connection that just finished its handshakes finds the node over that
  limit, `make_room` picks an open inbound connection to close: never one the node values
  (the driver's `keep`: a relay mesh peer, a filter subscriber), else one of the source
  holding the most open connections, the one idle longest (no stream opened on it for the
  longest time). That may be the newcomer itself (refused: everything else is valued, or its
  own source holds the most). Outbound connections are the node's own choice and never
  closed here. So whoever fills the node from a few addresses only pushes out his own
  connections, and a new peer still gets in; only the handshake, not a bare socket, can
  make room, so an attacker pays for every connection he pushes out.

What counts as one source (IPv6 by /64, trusted proxies) is chat/waku/inbound_sources.py.
Every eviction, refusal and timeout is counted by reason in `counts`.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from chat.waku.inbound_sources import Network, parse_networks, source_group


class Outcome(enum.Enum):
    """What happened to inbound connections; `counts` is keyed by these."""

    ACCEPTED = "accepted"
    UPGRADED = "upgraded"
    FAILED = "handshake_failed"
    EVICTED_SOURCE = "evicted_source_pending_full"
    EVICTED_TOTAL = "evicted_pending_full"
    REFUSED_PENDING = "refused_pending_full"
    REFUSED_SOURCE_OPEN = "refused_source_open_full"
    EVICTED_OPEN = "evicted_open_full"
    REFUSED_FULL = "refused_connections_full"
    FIRST_BYTES_TIMEOUT = "first_bytes_timeout"
    HANDSHAKE_TIMEOUT = "handshake_timeout"


SHEDS = (
    Outcome.EVICTED_SOURCE,
    Outcome.EVICTED_TOTAL,
    Outcome.REFUSED_PENDING,
    Outcome.REFUSED_SOURCE_OPEN,
    Outcome.EVICTED_OPEN,
    Outcome.REFUSED_FULL,
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
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks whose connections are exempt from the per-source limits, each
    counting as a source of its own (inbound_sources.py)."""

    def __post_init__(self) -> None:
        parse_networks(self.trusted_proxies)  # a bad address fails here, not at the first dial
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
    """The source it counts against (inbound_sources.py), not necessarily its address."""
    accepted_at: float
    phase: Phase = Phase.IDLE
    done: bool = False
    peer: Hashable | None = None
    """Once open: the peer it authenticated."""
    last_active: float = 0.0
    """Once open: when a stream was last opened on it (or it opened)."""


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
        # Per source, its open connections in the order they opened.
        self._open: dict[str, OrderedDict[int, InboundConnection]] = {}
        self._open_total = 0
        self._trusted: tuple[Network, ...] = parse_networks(self.limits.trusted_proxies)

    @property
    def pending(self) -> int:
        return self._pending_total

    @property
    def open(self) -> int:
        return self._open_total

    def source_of(self, address: str) -> str:
        """The source an address counts against (unique per call for a trusted proxy)."""
        group = source_group(address, self._trusted)
        return group if group is not None else f"{address}#{next(self._numbers)}"

    def pending_from(self, address: str) -> int:
        return len(self._pending.get(source_group(address, self._trusted) or "", ()))

    def open_from(self, address: str) -> int:
        return len(self._open.get(source_group(address, self._trusted) or "", ()))

    def arrive(self, address: str, now: float) -> Arrival:
        """A connection from `address` was accepted at `now`."""
        limits = self.limits
        source = self.source_of(address)
        if len(self._open.get(source, ())) >= limits.max_open_per_source:
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

    def upgraded(
        self, connection: InboundConnection, now: float, peer: Hashable | None = None
    ) -> bool:
        """The handshakes are done (with `peer`); False if it was evicted meanwhile."""
        if connection.done or connection.phase is Phase.OPEN:
            return False
        self._forget_pending(connection)
        connection.phase = Phase.OPEN
        connection.peer = peer
        connection.last_active = now
        self._open.setdefault(connection.source, OrderedDict())[connection.number] = connection
        self._open_total += 1
        self.counts[Outcome.UPGRADED] += 1
        return True

    def active(self, connection: InboundConnection, now: float) -> None:
        """A stream was opened on the open connection (either side)."""
        connection.last_active = max(connection.last_active, now)

    def make_room(
        self,
        newcomer: InboundConnection,
        keep: Callable[[InboundConnection], bool] = lambda connection: False,
    ) -> InboundConnection | None:
        """`newcomer` just opened and the node is over its connection limit: the open inbound
        connection to close (closed here and counted), or None if every one is kept.

        Never one `keep` says the node values; else of the source holding the most open
        connections, the one idle longest. When that is the newcomer it is refused
        (`REFUSED_FULL`) instead of another being evicted (`EVICTED_OPEN`): being the most
        recently active of its source, it is chosen only when everything else is kept or
        its own source holds the most."""
        for source in sorted(self._open, key=lambda s: -len(self._open[s])):
            candidates = [c for c in self._open[source].values() if not keep(c)]
            if candidates:
                victim = min(candidates, key=lambda c: (c.last_active, c.number))
                reason = Outcome.REFUSED_FULL if victim is newcomer else Outcome.EVICTED_OPEN
                self.counts[reason] += 1
                self.closed(victim)
                return victim
        return None

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
            opened = self._open.get(connection.source)
            if opened is not None and opened.pop(connection.number, None) is not None:
                self._open_total -= 1
                if not opened:
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
