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
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.net_stream import NetStream
from libp2p.peer.id import ID

from chat.waku.framing import read_frame, write_frame
from chat.waku.lightpush.client_core import MAX_ATTEMPTS, ServicePool, Verdict, retry_delay, verdict
from chat.waku.lightpush.wire import (
    MAX_FRAME_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    LegacyPushRequest,
    LegacyPushResponse,
    LightPushStatus,
    LightPushWireError,
    PushRequest,
    PushResponse,
)
from chat.waku.message import WakuMessage
from chat.waku.reqres import (
    CLOSE_TIME_LIMIT,
    STREAM_ERRORS,
    ExchangeFailed,
    ExchangeTimedOut,
    close_quietly,
)

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
    request_id = uuid.uuid4().hex
    try:
        protocol, frame = await _exchange_v3_or_v2(
            host, peer, request_id, message, pubsub_topic, time_limit
        )
        if protocol == PROTOCOL_V2:
            return _legacy_attempt(str(peer), attempt, LegacyPushResponse.decode(frame))
        response = PushResponse.decode(frame)
    except _NeedsPubsubTopic:
        return PushAttempt(str(peer), attempt, 400, "v2 node: a pubsub topic is required")
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


class _NeedsPubsubTopic(Exception):
    """The node speaks v2 only, which has no autosharding."""


async def _exchange_v3_or_v2(
    host: IHost,
    peer: ID,
    request_id: str,
    message: WakuMessage,
    pubsub_topic: str | None,
    time_limit: float,
) -> tuple[str, bytes]:
    """One request, v3 if the node speaks it, else v2 (negotiated on the same stream);
    the protocol used and the response frame. Raises ExchangeFailed."""
    stream: INetStream | None = None
    try:
        with trio.fail_after(time_limit):
            stream = await host.new_stream(peer, [TProtocol(PROTOCOL_V3), TProtocol(PROTOCOL_V2)])
            protocol = str(stream.get_protocol() or PROTOCOL_V3)
            if protocol == PROTOCOL_V2:
                if pubsub_topic is None:
                    raise _NeedsPubsubTopic
                request = LegacyPushRequest(request_id, pubsub_topic, message).encode()
            else:
                request = PushRequest(request_id, message, pubsub_topic).encode()
            await write_frame(stream, request)
            if isinstance(stream, NetStream):
                await stream.close_write()  # half-close: the request is complete
            return protocol, await read_frame(stream, MAX_FRAME_SIZE)
    except trio.TooSlowError:
        raise ExchangeTimedOut(f"light push to {peer} timed out after {time_limit} s") from None
    except STREAM_ERRORS as exc:
        raise ExchangeFailed(f"light push to {peer} failed: {exc!r}") from None
    finally:
        if stream is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIME_LIMIT):
                await close_quietly(stream)


def _legacy_attempt(peer: str, attempt: int, response: LegacyPushResponse) -> PushAttempt:
    """A v2 answer in v3's terms: success relayed to at least one peer (v2 fails with "No
    peers" otherwise, and gives no count); a failure by its text."""
    info = response.info or ""
    if response.is_success:
        return PushAttempt(peer, attempt, 200, info or "OK (v2)", relay_peer_count=1)
    lowered = info.lower()
    if "too many requests" in lowered:
        status = LightPushStatus.TOO_MANY_REQUESTS
    elif "no peers" in lowered:
        status = LightPushStatus.NO_PEERS_TO_RELAY
    else:
        status = LightPushStatus.INTERNAL_SERVER_ERROR
    return PushAttempt(peer, attempt, int(status), f"v2: {info}")


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

        # The pool may change while the round runs (a node dropped for good): order the
        # results by the round's own list.
        peers = self.pool.active
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(one, peer)
        return sorted(results, key=lambda r: peers.index(r.peer))
