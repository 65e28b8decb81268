"""Store v3 server driver: moves bytes between py-libp2p streams, the query core and the
archive. One request per stream.

What one peer, and all together, can make the node hold (docs/operator-guide.md, "Limits"):
- a request gate (chat/waku/request_gate.py): at most `GateLimits.per_peer` open queries
  per peer and `total` in all, refused unread beyond that (429 for a busy peer, 503 for a
  full node, unless a stream silent for `read_grace` can be reset to make room); of those,
  `running` at a time (2 per peer) query the archive and send their response, the others
  wait their turn in arrival order for at most `max_wait` seconds (503);
- a byte budget per response (`max_response_bytes` of messages; the rest follows by cursor);
- the rate limiter (nwaku's 429, answered before a byte of the request is read);
- time limits: the request must arrive within `read_timeout` (js-waku opens streams eagerly
  on identify and may never use them: those are reset); the response is written at a pace
  (`pace`, chat/waku/write_pace.py): each 16 KiB must get through within 3 s plus 1 s, the
  whole within 30 s, else the stream is reset and its turn freed (`slow_reader`). A peer
  that asks and stops reading held a turn for the whole 30 s: 4 peer ids held all 8.
Memory is therefore bounded by `running` responses of `max_response_bytes`, whatever the
number of parallel queries.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from chat.waku.framing import FramingError, encode_uvarint, read_frame
from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE
from chat.waku.ratelimit import RateLimiter, RequestLimiter
from chat.waku.reqres import end_served_stream, remote_peer, write_paced
from chat.waku.request_gate import GateLimits, Shed, Ticket
from chat.waku.server_gate import ServerGate
from chat.waku.store.server_core import (
    DEFAULT_MAX_RESPONSE_BYTES,
    QueryPlan,
    archive_failure,
    encoded_answer,
    overloaded_response,
    plan_query,
    rate_limited_response,
    undecodable_response,
)
from chat.waku.store.wire import MAX_REQUEST_SIZE, PROTOCOL_ID
from chat.waku.write_pace import DEFAULT_PACE, WritePace
from storage.archive import Archive, ArchiveError

log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_CONCURRENT_QUERIES = 4
"""Database threads; the gate's `running` queries share them."""
STORE_GATE = GateLimits(per_peer=8, total=128, running=8, running_per_peer=2, max_wait=10.0)


class StoreServer:
    name = "store"

    def __init__(
        self,
        archive: Archive,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = trio.current_time,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        pace: WritePace = DEFAULT_PACE,
        concurrent_queries: int = DEFAULT_CONCURRENT_QUERIES,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        gate: GateLimits = STORE_GATE,
    ) -> None:
        self.archive = archive
        self.limiter: RateLimiter = limiter or RequestLimiter(None)
        self.clock = clock
        self.read_timeout = read_timeout
        self.pace = pace
        self.max_message_size = max_message_size
        self.max_response_bytes = max_response_bytes
        self.gate = ServerGate(gate, clock=clock)
        # Queries wait their turn for a database thread instead of piling up threads.
        self._db_slots = trio.CapacityLimiter(concurrent_queries)
        self.status_counts: Counter[int] = Counter()
        # Refusals never change: encode them once.
        self._rate_limited = rate_limited_response().encode()
        self._busy = rate_limited_response().encode()
        self._full = overloaded_response().encode()

    def mount(self, host: Any) -> None:
        host.set_stream_handler(PROTOCOL_ID, self.handle_stream)

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Node service entry point: `host` is a WakuHost; serve until cancelled."""
        self.mount(host.libp2p)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            host.libp2p.remove_stream_handler(PROTOCOL_ID)

    async def handle_stream(self, stream: Any) -> None:
        answered = True
        ticket: Ticket | Shed | None = None
        try:
            peer = remote_peer(stream)
            ticket = self.gate.enter(peer)
            if ticket is Shed.PEER_BUSY:
                answered = await self._send(stream, 429, self._busy)
            elif ticket is Shed.SERVER_FULL:
                answered = await self._send(stream, 503, self._full)
            elif not self.limiter.allow(peer, self.clock()):
                answered = await self._send(stream, 429, self._rate_limited)
            else:
                assert isinstance(ticket, Ticket)
                answered = await self._serve_request(stream, peer, ticket)
        except Exception as exc:  # a broken stream must never take the node down
            log.debug("store stream failed: %s", exc)
        finally:
            if isinstance(ticket, Ticket):
                self.gate.leave(ticket)
            await end_served_stream(stream, answered=answered)

    async def _serve_request(self, stream: Any, peer: str, ticket: Ticket) -> bool:
        """Read, plan, wait for a turn, query and answer; False if no request ever came or
        the answer was given up on (the stream is then reset)."""
        with self.gate.reading(ticket), trio.move_on_after(self.read_timeout) as scope:
            try:
                raw = await read_frame(stream, MAX_REQUEST_SIZE)
            except FramingError as exc:
                response = undecodable_response(str(exc))
                return await self._send(stream, response.status_code, response.encode(), ticket)
        if scope.cancelled_caught or ticket.evicted:
            log.debug("store stream from %s sent no request; resetting it", peer)
            return False
        plan = plan_query(raw, max_response_bytes=self.max_response_bytes)
        if not isinstance(plan, QueryPlan):
            return await self._send(stream, plan.status_code, plan.encode(), ticket)
        if not await self.gate.turn(ticket):
            response = overloaded_response(plan.request.request_id)
            return await self._send(stream, response.status_code, response.encode(), ticket)
        status, body = await self._query(plan)
        return await self._send(stream, status, body, ticket)

    async def respond(self, raw: bytes) -> bytes:
        """The encoded response to one request's bytes (no gate, no rate limit)."""
        plan = plan_query(raw, max_response_bytes=self.max_response_bytes)
        if not isinstance(plan, QueryPlan):
            return plan.encode()
        return (await self._query(plan))[1]

    async def _query(self, plan: QueryPlan) -> tuple[int, bytes]:
        try:
            rows = await trio.to_thread.run_sync(
                self.archive.query, plan.archive_query, limiter=self._db_slots
            )
        except ArchiveError as exc:
            failure = archive_failure(plan, exc)
            return failure.status_code, failure.encode()
        body = encoded_answer(plan, rows, max_message_size=self.max_message_size)
        return 200, body

    async def _send(
        self, stream: Any, status: int, body: bytes, ticket: Ticket | None = None
    ) -> bool:
        """Write the response at the pace; False if its reader stalled (counted against the
        ticket's gate: the caller resets the stream, which frees the ticket's turn)."""
        self.status_counts[status] += 1
        # The length prefix on its own: joining it to a large body would copy the body.
        parts = (encode_uvarint(len(body)), body)
        if await write_paced(stream, parts, self.pace):
            return True
        log.debug("store answer of %d bytes not taken in time; resetting its stream", len(body))
        if ticket is not None:
            self.gate.slow_reader(ticket)
        return False
