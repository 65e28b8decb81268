"""Store-based reliability: prove what we sent is stored, find what we missed.

Sans-IO: the driver asks `due(now)` for queries, runs them against a store node and reports
the answers; this core decides what to ask and turns answers into events. Times are wall-
clock seconds (`now`); Waku time ranges are derived in nanoseconds.

- Sent → stored: every published envelope's hash is checked with a presence query (hash
  lookup, no data) `first_check_after` seconds after publishing, then every `check_every`,
  up to 50 hashes per query, until found or `give_up_after`. A found hash is the evidence
  for the outbox's `stored` state. (A re-send carries a new timestamp and so a new hash;
  each is tracked on its own and any of them proves the message stored.)
- Missed messages: every `scan_every` seconds, a hash-only range query per watched topic
  group (a pubsub topic and at most 10 content topics) over the time since the last
  successful scan, ending `settle` seconds ago so in-flight messages are not counted as
  missing. Hashes we have not received are fetched by hash lookup with data, each on its
  own schedule: retried `retry_failed_after` seconds later, doubling up to
  `max_fetch_delay`. A hash the store answered `fetch_attempts` times without returning
  (pruned meanwhile, or held by another node) is given up with a `NotRetrieved` event and
  not fetched again when a later scan lists it. A fetch no store answered waits the same
  way but does not count toward giving up: the store may come back.
- Staggering: every scan and every retry of a failed one is scheduled `scan_every` (or
  `retry_failed_after`) × a random factor in [1 − `scan_jitter`, 1 + `scan_jitter`], drawn
  from this client's own generator. Members who started together (or reconnected together)
  would otherwise scan in step, every minute, and a store's global rate limit answers the
  burst with 429s; the jitter spreads them out within a few scans.
- Catch-up: on start, reconnect and wake, every group scans at once from its persisted
  cursor (minus `overlap`), capped at `max_catch_up` back, up to now rather than `settle`
  ago: what was sent just before we woke is in the store and nowhere else, and waiting for
  the next scan would hide it for `scan_every`. (A message still in flight that is fetched
  too is a duplicate the receive path drops.) Its cursor still stops `settle` ago, so the
  next scan looks at that stretch again. A failed scan keeps its start, so the next one
  covers everything since the last success; a catch-up asked while a scan is in flight
  runs as soon as that one ends.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from dataclasses import dataclass, field

NS = 1_000_000_000
MAX_HASHES_PER_QUERY = 50
MAX_CONTENT_TOPICS = 10


@dataclass(frozen=True, slots=True)
class StoreCheckParams:
    first_check_after: float = 3.0
    check_every: float = 3.0
    give_up_after: float = 120.0
    scan_every: float = 60.0
    settle: float = 20.0
    overlap: float = 60.0
    max_catch_up: float = 30 * 24 * 3600.0
    received_cache_for: float = 3600.0
    retry_failed_after: float = 5.0
    max_fetch_delay: float = 300.0
    fetch_attempts: int = 5
    """Answers without the message before a missed message is given up."""
    scan_jitter: float = 0.0
    """Each scan's interval varies by up to this fraction either way (0: none, to name the
    second each scan is due; clients run with MessengerConfig's SCAN_JITTER)."""


# ---- queries the driver runs -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PresenceQuery:
    query_id: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RangeQuery:
    """Hash-only content query; the driver pages through it and reports every hash."""

    query_id: int
    pubsub_topic: str
    content_topics: tuple[str, ...]
    start_ns: int
    end_ns: int
    catch_up: bool = False
    """Asked by `catch_up`: it ends now, not `settle` ago."""


@dataclass(frozen=True, slots=True)
class FetchQuery:
    """Hash lookup with data for messages we missed."""

    query_id: int
    hashes: tuple[bytes, ...]


Query = PresenceQuery | RangeQuery | FetchQuery


# ---- events for the messenger ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stored:
    msg_hash: bytes
    store_peer: str


@dataclass(frozen=True, slots=True)
class NotStored:
    """We stopped checking: no store node had it within give_up_after."""

    msg_hash: bytes


@dataclass(frozen=True, slots=True)
class CursorAdvanced:
    pubsub_topic: str
    content_topics: tuple[str, ...]
    cursor: float
    """Everything before this wall-clock time (seconds) has been scanned."""


@dataclass(frozen=True, slots=True)
class MissingFound:
    count: int


@dataclass(frozen=True, slots=True)
class NotRetrieved:
    """A store listed this message but never returned it; we stopped asking."""

    msg_hash: bytes


StoreCheckEvent = Stored | NotStored | CursorAdvanced | MissingFound | NotRetrieved


@dataclass
class _Tracked:
    published_at: float
    next_check: float
    in_flight: bool = False


@dataclass
class _Fetch:
    next_try: float
    tries: int = 0
    """Fetches answered or failed: sets the backoff."""
    answers: int = 0
    """Fetches answered without the message: counts toward giving up."""
    in_flight: bool = False


@dataclass
class _Group:
    pubsub_topic: str
    content_topics: tuple[str, ...]
    cursor: float  # scanned up to here
    next_scan: float
    in_flight: int | None = None
    catch_up: bool = False
    """A catch-up was asked and has not started yet."""


@dataclass
class StoreChecks:
    params: StoreCheckParams = field(default_factory=StoreCheckParams)
    rng: random.Random = field(default_factory=random.Random)
    """This client's own draws for the scan jitter (seeded apart from every other client)."""

    def __post_init__(self) -> None:
        self._tracked: dict[bytes, _Tracked] = {}
        self._groups: dict[tuple[str, tuple[str, ...]], _Group] = {}
        self._received: OrderedDict[bytes, float] = OrderedDict()
        self._to_fetch: dict[bytes, _Fetch] = {}
        self._given_up: OrderedDict[bytes, float] = OrderedDict()
        self._ids = itertools.count(1)
        self._open: dict[int, Query] = {}

    # ---- inputs ----------------------------------------------------------------------------
    def track(self, msg_hash: bytes, now: float) -> None:
        """We published an envelope with this hash; prove it reached a store."""
        if msg_hash not in self._tracked:
            self._tracked[msg_hash] = _Tracked(now, now + self.params.first_check_after)

    def watch(
        self, pubsub_topic: str, content_topics: tuple[str, ...], cursor: float | None, now: float
    ) -> None:
        """Scan these topics for missed messages, starting from a persisted cursor."""
        if not 0 < len(content_topics) <= MAX_CONTENT_TOPICS:
            raise ValueError(f"a topic group has 1 to {MAX_CONTENT_TOPICS} content topics")
        key = (pubsub_topic, tuple(sorted(content_topics)))
        start = cursor if cursor is not None else now - self.params.settle
        self._groups.setdefault(key, _Group(key[0], key[1], start, now))

    def watched(self) -> set[tuple[str, str]]:
        """Every (pubsub topic, content topic) scanned: what the profile reads (a light
        client subscribes to the same with filter)."""
        return {(pubsub, topic) for pubsub, topics in self._groups for topic in topics}

    def unwatch(self, pubsub_topic: str, content_topics: tuple[str, ...]) -> None:
        self._groups.pop((pubsub_topic, tuple(sorted(content_topics))), None)

    def received(self, msg_hash: bytes, now: float) -> None:
        """A message arrived (relay, filter or store): it is not missing."""
        self._received[msg_hash] = now
        self._received.move_to_end(msg_hash)
        self._to_fetch.pop(msg_hash, None)
        self._forget_old(now)

    def has_received(self, msg_hash: bytes) -> bool:
        """Whether this message was handled already (within `received_cache_for`)."""
        return msg_hash in self._received

    def want(self, msg_hash: bytes, now: float) -> None:
        """Fetch this message by its hash: a missing dependency SDS named with its retrieval
        hint. Fetched, retried and given up like a message a scan found missing."""
        if msg_hash in self._received or msg_hash in self._given_up or msg_hash in self._to_fetch:
            return
        self._to_fetch[msg_hash] = _Fetch(next_try=now)

    def scan_now(self, pubsub_topic: str, content_topics: tuple[str, ...], now: float) -> None:
        """Scan this watched group now, up to now (not only what has settled): someone is
        waiting for what it holds (a community's description being fetched)."""
        group = self._groups.get((pubsub_topic, tuple(sorted(content_topics))))
        if group is not None:
            group.next_scan = min(group.next_scan, now)
            group.catch_up = True

    def catch_up(self, now: float) -> None:
        """Start, reconnect or wake: scan every group now."""
        for group in self._groups.values():
            group.next_scan = min(group.next_scan, now)
            group.catch_up = True

    # ---- what to ask -----------------------------------------------------------------------
    def due(self, now: float) -> list[Query]:
        queries: list[Query] = []
        checking = [h for h, t in self._tracked.items() if not t.in_flight and t.next_check <= now]
        for batch in _batches(checking, MAX_HASHES_PER_QUERY):
            for h in batch:
                self._tracked[h].in_flight = True
            queries.append(self._open_query(PresenceQuery(next(self._ids), tuple(batch))))
        for group in self._groups.values():
            if group.in_flight is None and group.next_scan <= now:
                start = max(group.cursor - self.params.overlap, now - self.params.max_catch_up)
                end = now if group.catch_up else now - self.params.settle
                if end <= start:
                    group.next_scan = now + self._staggered(self.params.scan_every)
                    continue
                query = RangeQuery(
                    next(self._ids),
                    group.pubsub_topic,
                    group.content_topics,
                    int(start * NS),
                    int(end * NS),
                    catch_up=group.catch_up,
                )
                group.in_flight = query.query_id
                group.catch_up = False
                queries.append(self._open_query(query))
        fetching = [h for h, f in self._to_fetch.items() if not f.in_flight and f.next_try <= now]
        for batch in _batches(fetching, MAX_HASHES_PER_QUERY):
            for h in batch:
                self._to_fetch[h].in_flight = True
            queries.append(self._open_query(FetchQuery(next(self._ids), tuple(batch))))
        return queries

    def next_wakeup(self) -> float | None:
        times = [t.next_check for t in self._tracked.values() if not t.in_flight]
        times += [g.next_scan for g in self._groups.values() if g.in_flight is None]
        times += [f.next_try for f in self._to_fetch.values() if not f.in_flight]
        return min(times) if times else None

    # ---- answers ---------------------------------------------------------------------------
    def presence_answer(
        self, query: PresenceQuery, present: set[bytes], store_peer: str, now: float
    ) -> list[StoreCheckEvent]:
        self._close(query)
        events: list[StoreCheckEvent] = []
        for h in query.hashes:
            tracked = self._tracked.get(h)
            if tracked is None:
                continue
            if h in present:
                del self._tracked[h]
                events.append(Stored(h, store_peer))
            elif now - tracked.published_at >= self.params.give_up_after:
                del self._tracked[h]
                events.append(NotStored(h))
            else:
                tracked.in_flight = False
                tracked.next_check = now + self.params.check_every
        return events

    def range_answer(
        self, query: RangeQuery, hashes: list[bytes], now: float
    ) -> list[StoreCheckEvent]:
        self._close(query)
        events: list[StoreCheckEvent] = []
        missing = [
            h
            for h in dict.fromkeys(hashes)
            if h not in self._received
            and h not in self._tracked
            and h not in self._given_up
            and h not in self._to_fetch  # already being fetched
        ]
        for h in missing:
            self._to_fetch[h] = _Fetch(next_try=now)
        if missing:
            events.append(MissingFound(len(missing)))
        group = self._groups.get((query.pubsub_topic, query.content_topics))
        if group is not None and group.in_flight == query.query_id:
            group.in_flight = None
            settled = query.end_ns / NS - (self.params.settle if query.catch_up else 0.0)
            group.cursor = max(group.cursor, settled)
            group.next_scan = (
                now if group.catch_up else now + self._staggered(self.params.scan_every)
            )
            events.append(CursorAdvanced(group.pubsub_topic, group.content_topics, group.cursor))
        return events

    def fetch_answer(
        self, query: FetchQuery, found: set[bytes], now: float
    ) -> list[StoreCheckEvent]:
        """Found messages go through the receive path; they are not missing any more, even
        if that path refused them. The rest are asked for again later, or given up."""
        self._close(query)
        events: list[StoreCheckEvent] = []
        for h in query.hashes:
            fetch = self._to_fetch.get(h)
            if fetch is None:  # arrived some other way meanwhile
                continue
            if h in found:
                self.received(h, now)
                continue
            fetch.answers += 1
            if fetch.answers >= self.params.fetch_attempts:
                del self._to_fetch[h]
                self._given_up[h] = now
                events.append(NotRetrieved(h))
            else:
                self._retry_fetch(fetch, now)
        self._forget_old(now)
        return events

    def query_failed(self, query: Query, now: float) -> None:
        """No store answered: try again soon. A range keeps its start, so nothing is lost."""
        self._close(query)
        retry_at = now + self.params.retry_failed_after
        if isinstance(query, PresenceQuery):
            for h in query.hashes:
                if h in self._tracked:
                    self._tracked[h].in_flight = False
                    self._tracked[h].next_check = retry_at
        elif isinstance(query, RangeQuery):
            group = self._groups.get((query.pubsub_topic, query.content_topics))
            if group is not None and group.in_flight == query.query_id:
                group.in_flight = None
                group.next_scan = now + self._staggered(self.params.retry_failed_after)
                group.catch_up |= query.catch_up
        else:
            for h in query.hashes:
                if (fetch := self._to_fetch.get(h)) is not None:
                    self._retry_fetch(fetch, now)

    def _staggered(self, interval: float) -> float:
        jitter = self.params.scan_jitter
        if jitter <= 0:
            return interval
        return interval * self.rng.uniform(1 - jitter, 1 + jitter)

    @property
    def group_count(self) -> int:
        """Topic groups being watched (each catch-up scans every one)."""
        return len(self._groups)

    @property
    def tracked_count(self) -> int:
        return len(self._tracked)

    @property
    def fetches_pending(self) -> int:
        """Missing messages still to be fetched by hash (asked, retrying or in flight)."""
        return len(self._to_fetch)

    def _retry_fetch(self, fetch: _Fetch, now: float) -> None:
        fetch.in_flight = False
        fetch.tries += 1
        delay = self.params.retry_failed_after * 2 ** (fetch.tries - 1)
        fetch.next_try = now + min(self.params.max_fetch_delay, delay)

    def _forget_old(self, now: float) -> None:
        horizon = now - self.params.received_cache_for
        for seen in (self._received, self._given_up):
            while seen and next(iter(seen.values())) < horizon:
                seen.popitem(last=False)

    def _open_query(self, query: Query) -> Query:
        self._open[query.query_id] = query
        return query

    def _close(self, query: Query) -> None:
        self._open.pop(query.query_id, None)


def _batches(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
