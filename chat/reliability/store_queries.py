"""The trio driver of the store checks (store_checks.py, the sans-IO core).

The core decides what to ask; this runs each query against the best connected store node,
fails over to the next one, and reports the answers back to its owner under the owner's
lock. Network round trips run outside that lock, so a slow store node never holds up
commands or received messages. A query no store node answered goes back to the core, which
schedules the retry.

As a timed feature it offers `next_wakeup()` (the core's next due query) and `run_due(now)`
(start every due query, each in its own task in the owner's nursery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import trio
from libp2p.peer.id import ID

from chat.reliability.store_checks import (
    CursorAdvanced,
    FetchQuery,
    NotRetrieved,
    PresenceQuery,
    Query,
    RangeQuery,
    StoreChecks,
    Stored,
)
from chat.waku.message import WakuMessage
from chat.waku.reqres import ExchangeFailed
from chat.waku.store.client import StoreClientError, StoreQueryFailed, new_request_id
from chat.waku.store.server_core import MAX_PAGE_SIZE
from chat.waku.store.wire import MessageKeyValue, StoreQueryRequest

log = logging.getLogger(__name__)

STORE_TRIES = 3
"""Store nodes one query tries before it waits for its retry."""
NO_STORE_RECHECK = 1.0
"""Seconds between looks for a store node while queries are due and none is connected."""
QUERIES_IN_FLIGHT = 4
"""Queries this client has open at once; the rest wait their turn. A store node answers a
peer's ninth open query with 429 (chat/waku/request_gate.py: 8 open, 2 running per peer),
and over a slow link presence checks, scans and fetches pile up faster than they return."""


class StoreQuerier(Protocol):
    """The store client (chat/waku/store/client.py)."""

    async def present(self, peer_id: Any, message_hashes: Sequence[bytes]) -> set[bytes]: ...
    async def query_all(
        self, peer_id: Any, request: StoreQueryRequest
    ) -> list[MessageKeyValue]: ...


class StoreNodes(Protocol):
    """Where the queries go: the store client and the connected store nodes."""

    @property
    def store(self) -> StoreQuerier: ...
    def store_peers(self) -> list[ID]:
        """Connected store nodes, best first."""
        ...

    def record_store(self, peer: ID, ok: bool) -> None: ...


class StoreAnswers(Protocol):
    """What the driver reports to its owner. The async ones run under the owner's lock."""

    async def stored(self, event: Stored) -> None:
        """A store node lists a message we published: the evidence for 'stored'."""
        ...

    async def cursor_advanced(self, event: CursorAdvanced, now: float) -> None:
        """A scan completed: everything before the cursor has been seen."""
        ...

    async def fetched(self, pubsub_topic: str, message: WakuMessage, msg_hash: bytes) -> None:
        """A message we missed, fetched from a store (its hash checked)."""
        ...

    def scan_failed(self) -> None:
        """No store node answered a scan."""
        ...

    def store_reached(self, ok: bool, code: str = "other") -> None:
        """Whether the last store query got an answer (`code`: why not, see `failure_code`)."""
        ...


class StoreQueries:
    def __init__(
        self,
        checks: StoreChecks,
        nodes: StoreNodes,
        answers: StoreAnswers,
        *,
        lock: trio.Lock,
        clock: Callable[[], float],
        wake: Callable[[], None],
        default_pubsub_topic: str,
    ) -> None:
        self.checks = checks
        self._nodes = nodes
        self._answers = answers
        self._lock = lock
        self._clock = clock
        self._wake = wake
        self._default_pubsub_topic = default_pubsub_topic
        """For a fetched message the store returns without its pubsub topic."""
        self._nursery: trio.Nursery | None = None
        self._in_flight = trio.CapacityLimiter(QUERIES_IN_FLIGHT)

    def attach(self, nursery: trio.Nursery | None) -> None:
        """The nursery queries run in; None while stopping (queries are asked again later)."""
        self._nursery = nursery

    # ---- the timed feature -------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        """The core's next due query; while no store node is connected, a due query waits
        for one (looked for every NO_STORE_RECHECK): it cannot run, and reporting it due
        would make the scheduler spin."""
        due = self.checks.next_wakeup()
        if due is None or self._nodes.store_peers():
            return due
        return max(due, self._clock() + NO_STORE_RECHECK)

    async def run_due(self, now: float) -> None:
        if self._nodes.store_peers():
            for query in self.checks.due(now):
                self._start(query)

    # ---- running one query -------------------------------------------------------------------
    def _start(self, query: Query) -> None:
        if self._nursery is None:  # stopping: the query is asked again after a restart
            self.checks.query_failed(query, self._clock())
            return
        self._nursery.start_soon(self._run, query)

    async def _run(self, query: Query) -> None:
        """Ask the best store node; on failure the next one (failover), then give up for
        now (the core schedules the retry). At most QUERIES_IN_FLIGHT run at once."""
        async with self._in_flight:
            await self._run_one(query)

    async def _run_one(self, query: Query) -> None:
        for peer in self._nodes.store_peers()[:STORE_TRIES]:
            try:
                await self._ask(peer, query)
            except StoreClientError as exc:
                log.info("store query to %s failed: %s", peer, exc)
                self._nodes.record_store(peer, False)
                self._answers.store_reached(False, failure_code(exc))
                continue
            self._nodes.record_store(peer, True)
            self._answers.store_reached(True)
            self._wake()
            return
        async with self._lock:
            self.checks.query_failed(query, self._clock())
            if isinstance(query, RangeQuery):
                self._answers.scan_failed()
        self._wake()

    async def _ask(self, peer: ID, query: Query) -> None:
        if isinstance(query, PresenceQuery):
            present = await self._nodes.store.present(peer, query.hashes)
            async with self._lock:
                for event in self.checks.presence_answer(query, present, str(peer), self._clock()):
                    if isinstance(event, Stored):
                        await self._answers.stored(event)
        elif isinstance(query, RangeQuery):
            hashes = await self._range_hashes(peer, query)
            async with self._lock:
                now = self._clock()
                for event in self.checks.range_answer(query, hashes, now):
                    if isinstance(event, CursorAdvanced):
                        await self._answers.cursor_advanced(event, now)
                    elif isinstance(event, NotRetrieved):
                        log.info("store listed %s but never returned it", event.msg_hash.hex())
        else:
            found = await self._fetch(peer, query)
            async with self._lock:
                for event in self.checks.fetch_answer(query, found, self._clock()):
                    if isinstance(event, NotRetrieved):
                        log.info("store listed %s but never returned it", event.msg_hash.hex())

    async def _range_hashes(self, peer: ID, query: RangeQuery) -> list[bytes]:
        request = StoreQueryRequest(
            request_id=new_request_id(),
            include_data=False,
            pubsub_topic=query.pubsub_topic,
            content_topics=query.content_topics,
            time_start=query.start_ns,
            time_end=query.end_ns,
            pagination_forward=True,
            pagination_limit=MAX_PAGE_SIZE,
        )
        results = await self._nodes.store.query_all(peer, request)
        return [kv.message_hash for kv in results]

    async def _fetch(self, peer: ID, query: FetchQuery) -> set[bytes]:
        request = StoreQueryRequest(
            request_id=new_request_id(),
            include_data=True,
            message_hashes=query.hashes,
            pagination_forward=True,
            pagination_limit=MAX_PAGE_SIZE,
        )
        results = await self._nodes.store.query_all(peer, request)
        found: set[bytes] = set()
        for kv in results:
            if kv.message is None:
                continue
            pubsub_topic = kv.pubsub_topic or self._default_pubsub_topic
            if kv.message.hash(pubsub_topic) != kv.message_hash:
                log.warning("store returned a message whose hash does not match; ignored")
                continue
            found.add(kv.message_hash)
            async with self._lock:
                await self._answers.fetched(pubsub_topic, kv.message, kv.message_hash)
        return found


def failure_code(exc: StoreClientError) -> str:
    """A failed store query as telemetry's error code: no answer in time (`timeout`), a
    failure status (`refused`), a reply we could not read (`decode`), the stream (`other`)."""
    if isinstance(exc, StoreQueryFailed):
        return "refused"
    if exc.__cause__ is None:
        return "timeout"
    return "other" if isinstance(exc.__cause__, ExchangeFailed) else "decode"
