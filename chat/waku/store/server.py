"""Store v3 server driver: moves bytes between py-libp2p streams, the query core and the
archive. One request per stream; a rate-limited peer gets nwaku's 429 answer before a byte of
its request is read; a stream that never sends a request (js-waku opens them eagerly on
identify) is reset after `read_timeout`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from chat.waku.framing import FramingError, read_frame, write_frame
from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE
from chat.waku.ratelimit import RateLimiter, RequestLimiter
from chat.waku.reqres import end_served_stream, remote_peer
from chat.waku.store.query import (
    QueryPlan,
    answer,
    archive_failure,
    plan_query,
    rate_limited_response,
    undecodable_response,
)
from chat.waku.store.wire import MAX_REQUEST_SIZE, PROTOCOL_ID, StoreQueryResponse
from storage.archive import Archive, ArchiveError

log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_CONCURRENT_QUERIES = 4


class StoreServer:
    name = "store"

    def __init__(
        self,
        archive: Archive,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = trio.current_time,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        concurrent_queries: int = DEFAULT_CONCURRENT_QUERIES,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.archive = archive
        self.limiter: RateLimiter = limiter or RequestLimiter(None)
        self.clock = clock
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_message_size = max_message_size
        # Queries wait their turn for a database thread instead of piling up threads.
        self._db_slots = trio.CapacityLimiter(concurrent_queries)
        self.status_counts: Counter[int] = Counter()
        # The 429 answer never changes: encode it once.
        self._rejection = rate_limited_response().encode()

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
        idle = False
        try:
            peer = remote_peer(stream)
            if not self.limiter.allow(peer, self.clock()):
                self.status_counts[429] += 1
                await self._send(stream, self._rejection)
                return
            with trio.move_on_after(self.read_timeout) as scope:
                try:
                    raw = await read_frame(stream, MAX_REQUEST_SIZE)
                except FramingError as exc:
                    response = undecodable_response(str(exc))
                    self.status_counts[response.status_code] += 1
                    await self._send(stream, response.encode())
                    return
            if scope.cancelled_caught:
                log.debug("store stream from %s sent no request; resetting it", peer)
                idle = True
                return
            response = await self.respond(raw)
            self.status_counts[response.status_code] += 1
            await self._send(stream, response.encode())
        except Exception as exc:  # a broken stream must never take the node down
            log.debug("store stream failed: %s", exc)
        finally:
            await end_served_stream(stream, answered=not idle)

    async def respond(self, raw: bytes) -> StoreQueryResponse:
        """The response to one request's bytes (decoding, validation, the archive query)."""
        plan = plan_query(raw)
        if not isinstance(plan, QueryPlan):
            return plan
        try:
            rows = await trio.to_thread.run_sync(
                self.archive.query, plan.archive_query, limiter=self._db_slots
            )
        except ArchiveError as exc:
            return archive_failure(plan, exc)
        return answer(plan, rows, max_message_size=self.max_message_size)

    async def _send(self, stream: Any, payload: bytes) -> None:
        with trio.move_on_after(self.write_timeout):
            await write_frame(stream, payload)
