"""Light push service node driver: v3 and legacy v2 handlers over one publish callable.

One request and one response per stream. Rate-limited requests are answered nwaku's way
without reading the body; a request that never arrives is dropped after a time limit. A
request gate bounds how many requests one peer (`GateLimits.per_peer`) and everyone
(`total`) may have open at once, each holding up to a frame of ~1.6 MB while it is read:
beyond that a request is refused unread (429 for a busy peer, 503 for a full node). The
response is written at a pace (chat/waku/write_pace.py): a peer that does not take it in
time has its stream reset and frees its place (`slow_reader`).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from chat.waku.framing import FramingError, encode_frame, read_frame
from chat.waku.lightpush.server_core import (
    TOO_MANY_REQUESTS_DESC,
    Publish,
    ShardFor,
    push,
)
from chat.waku.lightpush.wire import (
    MAX_FRAME_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    UNKNOWN_REQUEST_ID,
    LegacyPushRequest,
    LegacyPushResponse,
    LightPushStatus,
    LightPushWireError,
    OversizedMessage,
    PushRequest,
    PushResponse,
)
from chat.waku.ratelimit import RateLimiter
from chat.waku.reqres import STREAM_ERRORS, end_served_stream, remote_peer, write_paced
from chat.waku.request_gate import GateLimits, Shed, Ticket
from chat.waku.server_gate import ServerGate
from chat.waku.write_pace import DEFAULT_PACE, WritePace

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
DECODE_FAILURE = "decode_rpc_failure"
OVERLOADED_DESC = "Request rejected: the node has too many requests in progress"
LIGHTPUSH_GATE = GateLimits(per_peer=4, total=64)


class LightPushServer:
    name = "lightpush"

    def __init__(
        self,
        host: IHost,
        publish: Publish,
        *,
        shard_for: ShardFor | None = None,
        rate_limiter: RateLimiter | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        serve_v2: bool = True,
        gate: GateLimits = LIGHTPUSH_GATE,
        pace: WritePace = DEFAULT_PACE,
    ) -> None:
        self.host = host
        self.publish = publish
        self.shard_for = shard_for
        self.rate_limiter = rate_limiter
        self.request_timeout = request_timeout
        self.serve_v2 = serve_v2
        self.gate = ServerGate(gate)
        self.pace = pace
        self.responses: Counter[tuple[str, int]] = Counter()
        """(protocol version, status) -> count; v2 counts 200 for success and 0 for failure."""

    def start(self) -> None:
        self.host.set_stream_handler(TProtocol(PROTOCOL_V3), self._handle_v3)
        if self.serve_v2:
            self.host.set_stream_handler(TProtocol(PROTOCOL_V2), self._handle_v2)

    def stop(self) -> None:
        self.host.remove_stream_handler(TProtocol(PROTOCOL_V3))
        if self.serve_v2:
            self.host.remove_stream_handler(TProtocol(PROTOCOL_V2))

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Node service entry point: serve until cancelled (the server holds its host)."""
        self.start()
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self.stop()

    def _allowed(self, stream: INetStream) -> bool:
        limiter = self.rate_limiter
        return limiter is None or limiter.allow(remote_peer(stream), trio.current_time())

    async def _read_request(self, stream: INetStream, ticket: Ticket) -> bytes | None:
        """The request's frame; None if it did not come in time, is bad, or was evicted."""
        frame = None
        with self.gate.reading(ticket), trio.move_on_after(self.request_timeout):
            try:
                frame = await read_frame(stream, MAX_FRAME_SIZE)
            except FramingError as exc:
                log.debug("bad light push frame: %s", exc)
        return None if ticket.evicted else frame

    async def _write(self, stream: INetStream, response: bytes, ticket: Ticket | Shed) -> bool:
        """The response, at the pace; False (counted) if the peer did not take it in time."""
        if await write_paced(stream, (encode_frame(response),), self.pace):
            return True
        if isinstance(ticket, Ticket):
            self.gate.slow_reader(ticket)
        return False

    async def _handle_v3(self, stream: INetStream) -> None:
        response = None
        ticket = self.gate.enter(remote_peer(stream))
        try:
            if isinstance(ticket, Shed):
                response = _refusal_v3(ticket)
            else:
                response = await self._answer_v3(stream, ticket)
            if response is not None:
                self.responses[("v3", response.status_code)] += 1
                if not await self._write(stream, response.encode(), ticket):
                    response = None  # not taken in time: reset
        except STREAM_ERRORS as exc:
            log.debug("light push v3 stream failed: %r", exc)
        finally:
            if isinstance(ticket, Ticket):
                self.gate.leave(ticket)
            await end_served_stream(stream, answered=response is not None)

    async def _answer_v3(self, stream: INetStream, ticket: Ticket) -> PushResponse | None:
        if not self._allowed(stream):
            return PushResponse(
                UNKNOWN_REQUEST_ID, LightPushStatus.TOO_MANY_REQUESTS, TOO_MANY_REQUESTS_DESC
            )
        frame = await self._read_request(stream, ticket)
        if frame is None:
            return None
        try:
            request = PushRequest.decode(frame)
        except OversizedMessage as exc:
            return PushResponse(UNKNOWN_REQUEST_ID, LightPushStatus.INVALID_MESSAGE, str(exc))
        except LightPushWireError as exc:
            return PushResponse(
                UNKNOWN_REQUEST_ID, LightPushStatus.BAD_REQUEST, f"{DECODE_FAILURE}: {exc}"
            )
        outcome = push(self.publish, self.shard_for, request.pubsub_topic, request.message)
        return PushResponse(
            request.request_id, outcome.status, outcome.desc, outcome.relay_peer_count
        )

    async def _handle_v2(self, stream: INetStream) -> None:
        response = None
        ticket = self.gate.enter(remote_peer(stream))
        try:
            if isinstance(ticket, Shed):
                desc = TOO_MANY_REQUESTS_DESC if ticket is Shed.PEER_BUSY else OVERLOADED_DESC
                response = LegacyPushResponse(UNKNOWN_REQUEST_ID, False, desc)
            else:
                response = await self._answer_v2(stream, ticket)
            if response is not None:
                self.responses[("v2", 200 if response.is_success else 0)] += 1
                if not await self._write(stream, response.encode(), ticket):
                    response = None  # not taken in time: reset
        except STREAM_ERRORS as exc:
            log.debug("light push v2 stream failed: %r", exc)
        finally:
            if isinstance(ticket, Ticket):
                self.gate.leave(ticket)
            await end_served_stream(stream, answered=response is not None)

    async def _answer_v2(self, stream: INetStream, ticket: Ticket) -> LegacyPushResponse | None:
        if not self._allowed(stream):
            return LegacyPushResponse(UNKNOWN_REQUEST_ID, False, TOO_MANY_REQUESTS_DESC)
        frame = await self._read_request(stream, ticket)
        if frame is None:
            return None
        try:
            request = LegacyPushRequest.decode(frame)
        except LightPushWireError as exc:
            return LegacyPushResponse(UNKNOWN_REQUEST_ID, False, f"{DECODE_FAILURE}: {exc}")
        outcome = push(self.publish, None, request.pubsub_topic, request.message)
        if outcome.succeeded:
            return LegacyPushResponse(request.request_id, True, "OK")
        return LegacyPushResponse(request.request_id, False, outcome.desc)


def _refusal_v3(reason: Shed) -> PushResponse:
    if reason is Shed.PEER_BUSY:
        return PushResponse(
            UNKNOWN_REQUEST_ID, LightPushStatus.TOO_MANY_REQUESTS, TOO_MANY_REQUESTS_DESC
        )
    return PushResponse(UNKNOWN_REQUEST_ID, LightPushStatus.SERVICE_NOT_AVAILABLE, OVERLOADED_DESC)
