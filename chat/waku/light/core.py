"""Which service nodes a light client holds, and what it does when one is lost; sans-IO.

Filter subscriptions live in `FilterClientCore` (two nodes, pings, replacement); light push
nodes in the push client's `ServicePool`. This core sits above both:

- the candidates: configured service nodes first, then those peer exchange found (bounded);
  a new candidate joins both pools;
- failover: a node whose connection is lost leaves both pools at once (the next candidate
  takes its place), not after failed pings or pushes;
- gaps: when fewer filter nodes hold our subscriptions than a moment before (a loss, or new
  topics no node holds yet), pushes may have been missed. Once some node holds them all
  again, the driver runs a store query from the gap's start (less a margin for clock skew
  and pushes in flight): `CatchUpFrom`;
- bad pushes: a node pushing a message for a topic we never asked it for is ignored, and
  after a few such pushes it is dropped as a candidate (scored down for good);
- peer exchange: asked at start and then every `exchange_interval` while fewer candidates
  are known than `wanted_candidates`;
- the health line: filter held/wanted, push held/wanted, store ok.

Time comes in as `now` (seconds, the driver's clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from chat.waku.filter.client_core import Criterion, FilterClientCore
from chat.waku.lightpush.client_core import ServicePool

MAX_CANDIDATES = 16
WANTED_CANDIDATES = 4
"""Below this many known service nodes, peer exchange is asked for more."""
EXCHANGE_INTERVAL = 60.0
EXCHANGE_RETRY = 5.0
"""Seconds before asking again when no service node could be asked (none connected yet)."""
GAP_MARGIN = 30.0
"""Seconds before a gap's start that its catch-up query begins."""
MAX_UNREQUESTED_PUSHES = 3
"""Pushes for topics we never asked a node for, before it is dropped."""


@dataclass(frozen=True, slots=True)
class CatchUpFrom:
    """Ask the store for what arrived since `since` (the filter held too few nodes)."""

    since: float


@dataclass(frozen=True, slots=True)
class LightHealth:
    filter_held: int
    filter_wanted: int
    push_held: int
    push_wanted: int
    store_ok: bool | None
    """None: no store answer yet."""

    @property
    def degraded(self) -> bool:
        return (
            self.filter_held < self.filter_wanted
            or self.push_held < self.push_wanted
            or self.store_ok is False
        )

    def line(self) -> str:
        store = {None: "store ?", True: "store ok", False: "store failing"}[self.store_ok]
        return (
            f"filter {self.filter_held}/{self.filter_wanted}, "
            f"push {self.push_held}/{self.push_wanted}, {store}"
        )


class LightCore:
    def __init__(
        self,
        filter_core: FilterClientCore,
        push_pool: ServicePool,
        *,
        max_candidates: int = MAX_CANDIDATES,
        wanted_candidates: int = WANTED_CANDIDATES,
        exchange_interval: float = EXCHANGE_INTERVAL,
        gap_margin: float = GAP_MARGIN,
        max_unrequested_pushes: int = MAX_UNREQUESTED_PUSHES,
    ) -> None:
        self.filter = filter_core
        self.push = push_pool
        self.max_candidates = max_candidates
        self.wanted_candidates = wanted_candidates
        self.exchange_interval = exchange_interval
        self.gap_margin = gap_margin
        self.max_unrequested_pushes = max_unrequested_pushes
        self.candidates: list[str] = []
        self.dropped: set[str] = set()
        self.unrequested: Counter[str] = Counter()
        self.push_failing: set[str] = set()
        self.store_ok: bool | None = None
        self._gap_since: float | None = None
        self._last_held = 0
        self._next_exchange = 0.0
        self.failovers = 0
        self.gaps = 0
        """Times fewer filter nodes than wanted held our subscriptions (a loss, new topics)."""
        for peer in [*filter_core.candidates, *push_pool.candidates]:
            self.add_candidate(peer)

    # -- candidates ---------------------------------------------------------------------------

    def add_candidate(self, peer: str) -> bool:
        """A service node to use; False when known, dropped, or the pool is full."""
        if peer in self.candidates or peer in self.dropped:
            return False
        if len(self.candidates) >= self.max_candidates:
            return False
        self.candidates.append(peer)
        if peer not in self.filter.candidates:
            self.filter.candidates.append(peer)
        if peer not in self.push.candidates:
            self.push.candidates.append(peer)
        return True

    def exchange_due(self, now: float) -> bool:
        """Whether to ask for more service nodes now (the driver asks, then calls again)."""
        if len(self.candidates) >= self.wanted_candidates or now < self._next_exchange:
            return False
        self._next_exchange = now + self.exchange_interval
        return True

    def exchange_unanswered(self, now: float) -> None:
        """No node answered (none connected yet, or every one failed): ask again soon."""
        self._next_exchange = min(self._next_exchange, now + EXCHANGE_RETRY)

    def next_exchange(self) -> float | None:
        if len(self.candidates) >= self.wanted_candidates:
            return None
        return self._next_exchange

    # -- filter: what we hold, gaps -----------------------------------------------------------

    def filter_held(self) -> int:
        """Nodes holding every criterion we want (none wanted yet: nodes in use)."""
        wanted = self.filter.wanted
        return sum(1 for peer in self.filter.active_peers if wanted <= self.filter.held_by(peer))

    def observe_filter(self, now: float) -> CatchUpFrom | None:
        """Call after every filter event. Opens a gap when fewer nodes hold our subscriptions
        than wanted; closes it when enough do again, asking for the store to fill it."""
        if not self.filter.wanted:
            return None
        held = self.filter_held()
        lost = held < self._last_held or held == 0
        self._last_held = held
        if lost and self._gap_since is None:
            self._gap_since = now
            self.gaps += 1
        if self._gap_since is None or held == 0:
            return None
        since = self._gap_since - self.gap_margin
        self._gap_since = None
        return CatchUpFrom(since)

    def lost(self, peer: str, now: float) -> bool:
        """The connection to a service node is gone: fail over at once. True if it was in
        use (filter or push)."""
        in_filter = self.filter.lost(peer, now)
        in_push = peer in self.push.active
        if in_push:
            self.push.replace(peer)
            self.push_failing.add(peer)
        if in_filter or in_push:
            self.failovers += 1
        return in_filter or in_push

    def reconnected(self, peer: str) -> None:
        """A connection to a candidate opened: its past push failures are forgotten."""
        self.push_failing.discard(peer)

    def reset(self) -> None:
        """Every connection was dropped (a sleep, a network change): start afresh."""
        self.filter.unbench()
        self.push_failing.clear()

    def accept_push(self, peer: str, criterion: Criterion) -> bool:
        """Whether a filter push is for a topic we asked for; a node that keeps pushing
        others is dropped as a candidate. A peer that is not one of our service nodes is
        ignored, uncounted (any peer may open a push stream)."""
        if peer not in self.candidates and peer not in self.filter.candidates:
            return False
        if criterion in self.filter.wanted:
            return True
        self.unrequested[peer] += 1
        if self.unrequested[peer] >= self.max_unrequested_pushes:
            self.drop(peer)
        return False

    def drop(self, peer: str) -> None:
        """Never use this node again (this run)."""
        self.dropped.add(peer)
        if peer in self.candidates:
            self.candidates.remove(peer)
        if peer in self.filter.candidates:
            self.filter.candidates.remove(peer)
        self.filter.forget(peer)
        if peer in self.push.candidates:
            self.push.candidates.remove(peer)

    # -- push ---------------------------------------------------------------------------------

    def push_results(self, succeeded: Iterable[str], failed: Iterable[str]) -> None:
        """The nodes a push round reached, and those that failed it (replaced in the pool)."""
        self.push_failing -= set(succeeded)
        self.push_failing |= set(failed)

    def push_held(self) -> int:
        return sum(1 for peer in self.push.active if peer not in self.push_failing)

    # -- store ---------------------------------------------------------------------------------

    def store_result(self, ok: bool) -> None:
        self.store_ok = ok

    def health(self) -> LightHealth:
        return LightHealth(
            filter_held=self.filter_held(),
            filter_wanted=self.filter.wanted_nodes,
            push_held=self.push_held(),
            push_wanted=self.push.wanted,
            store_ok=self.store_ok,
        )
