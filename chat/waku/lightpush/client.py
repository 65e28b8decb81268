"""Light push v3 client: one push to one node, and redundant push to two with failover.

Every attempt's result is returned so the outbox can record its evidence ("light push
answered 200 with 3 relay peers from node X").
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID

from chat.waku.lightpush.client_core import MAX_ATTEMPTS, ServicePool, Verdict, retry_delay, verdict
from chat.waku.lightpush.wire import (
    MAX_FRAME_SIZE,
    PROTOCOL_V3,
    LightPushWireError,
    PushRequest,
    PushResponse,
)
from chat.waku.message import WakuMessage
from chat.waku.reqres import ExchangeFailed, exchange

log = logging.getLogger(__name__)

REQUEST_TIME_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class PushAttempt:
    peer: str
    attempt: int
    status_code: int | None
    """None when no response arrived (unreachable, timeout, broken stream or bad reply)."""
    description: str
    relay_peer_count: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status_code == 200 and self.relay_peer_count >= 1


@dataclass(frozen=True, slots=True)
class PushReport:
    attempts: tuple[PushAttempt, ...]

    @property
    def succeeded(self) -> bool:
        return any(a.succeeded for a in self.attempts)


async def push_once(
    host: IHost,
    peer: ID,
    message: WakuMessage,
    pubsub_topic: str | None,
    *,
    attempt: int = 1,
    time_limit: float = REQUEST_TIME_LIMIT,
) -> PushAttempt:
    request = PushRequest(uuid.uuid4().hex, message, pubsub_topic)
    try:
        frame = await exchange(
            host,
            peer,
            PROTOCOL_V3,
            request.encode(),
            max_response_size=MAX_FRAME_SIZE,
            time_limit=time_limit,
        )
        response = PushResponse.decode(frame)
    except (ExchangeFailed, LightPushWireError) as exc:
        return PushAttempt(str(peer), attempt, None, str(exc))
    if response.status_code == 200 and not response.succeeded:
        # 200 without relay peers: nwaku clients read this as 505, so do we.
        return PushAttempt(str(peer), attempt, 505, "200 without relay peers")
    return PushAttempt(
        str(peer),
        attempt,
        response.status_code,
        response.status_desc or "",
        response.relay_peer_count or 0,
    )


class LightPushClient:
    """Pushes each message to two service nodes at once, failing over per reliability §4.2."""

    def __init__(
        self,
        host: IHost,
        service_nodes: Sequence[ID],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        time_limit: float = REQUEST_TIME_LIMIT,
    ) -> None:
        self.host = host
        self._ids = {str(p): p for p in service_nodes}
        self.pool = ServicePool(list(self._ids))
        self.max_attempts = max_attempts
        self.time_limit = time_limit

    async def push(self, message: WakuMessage, pubsub_topic: str | None = None) -> PushReport:
        attempts: list[PushAttempt] = []
        for attempt in range(1, self.max_attempts + 1):
            await trio.sleep(retry_delay(attempt))
            round_results = await self._round(message, pubsub_topic, attempt)
            attempts.extend(round_results)
            verdicts = {verdict(r.status_code) for r in round_results}
            for result in round_results:
                if verdict(result.status_code) is Verdict.REPLACE_AND_RETRY:
                    self.pool.replace(result.peer)
            if Verdict.SENT in verdicts:
                break
            if verdicts <= {Verdict.GIVE_UP}:
                break
        return PushReport(tuple(attempts))

    async def _round(
        self, message: WakuMessage, pubsub_topic: str | None, attempt: int
    ) -> list[PushAttempt]:
        results: list[PushAttempt] = []

        async def one(peer: str) -> None:
            results.append(
                await push_once(
                    self.host,
                    self._ids.get(peer) or ID.from_base58(peer),
                    message,
                    pubsub_topic,
                    attempt=attempt,
                    time_limit=self.time_limit,
                )
            )

        async with trio.open_nursery() as nursery:
            for peer in self.pool.active:
                nursery.start_soon(one, peer)
        return sorted(results, key=lambda r: self.pool.candidates.index(r.peer))
