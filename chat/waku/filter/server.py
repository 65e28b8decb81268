"""Filter v2 service node driver: answers subscribe requests and pushes matching messages.

The subscription state lives in the sans-IO FilterSubscriptions; this module only moves bytes.
Whoever receives relay traffic calls `on_message(pubsub_topic, message)`; it never blocks.
Each subscriber gets its own pusher task and one long-lived push stream (nwaku writes many
frames on one stream), so a stalled subscriber only loses its own frames. What they may hold
queued is bounded in bytes, per subscriber and in all (push_queue.py): a subscriber that
stops reading loses its oldest frames, and catches up from store.
A request gate bounds the subscribe requests one peer (`GateLimits.per_peer`) and everyone
(`total`) may have open at once: beyond that a request is refused unread (429, or 503). A
response is written at a pace (chat/waku/write_pace.py): not taken in time, its stream is
reset and its place freed (`slow_reader`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from chat.waku.filter.push_queue import PushLimits, PushQueues, SubscriberQueue
from chat.waku.filter.server_core import (
    FilterSubscriptions,
    bad_request_response,
    rate_limited_response,
)
from chat.waku.filter.wire import (
    MAX_FRAME_SIZE,
    PUSH_PROTOCOL,
    SUBSCRIBE_PROTOCOL,
    FilterStatus,
    FilterWireError,
    MessagePush,
    SubscribeRequest,
    SubscribeResponse,
)
from chat.waku.framing import FramingError, encode_frame, read_frame
from chat.waku.message import WakuMessage
from chat.waku.ratelimit import RateLimiter
from chat.waku.reqres import (
    STREAM_ERRORS,
    close_quietly,
    end_served_stream,
    remote_peer,
    write_paced,
)
from chat.waku.request_gate import GateLimits, Shed, Ticket
from chat.waku.server_gate import ServerGate
from chat.waku.write_pace import DEFAULT_PACE, WritePace

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
"""A subscribe stream that has not delivered its request by then is closed (js-waku opens
streams eagerly on identify and may never use them)."""
PUSH_TIMEOUT = 20.0
"""nwaku gives up on a push round after 20 s."""
MAINTENANCE_INTERVAL = 60.0
FILTER_GATE = GateLimits(per_peer=4, total=64)

AnswerSink = Callable[[str, SubscribeRequest, SubscribeResponse], None]

_PUSH_ERRORS: tuple[type[BaseException], ...] = (trio.TooSlowError, *STREAM_ERRORS)


@dataclass(slots=True)
class FilterServerStats:
    requests: Counter[int] = field(default_factory=Counter)
    """Responses sent, by status code."""
    idle_streams_closed: int = 0
    broken_requests: int = 0
    """Streams that ended, broke or sent an oversized frame before a request arrived."""
    pushes_sent: int = 0
    pushes_dropped: Counter[str] = field(default_factory=Counter)
    """Frames not delivered, by reason: queue_full (the subscriber's own bound),
    memory_full (the bound for all), not_connected, stream_failed."""


class _Pusher:
    """One subscriber's outbound queue and push stream."""

    def __init__(self, peer: str, queue: SubscriberQueue) -> None:
        self.peer = peer
        self.queue = queue
        self.wake = trio.Event()
        self.stream: INetStream | None = None
        self.cancel_scope = trio.CancelScope()


class FilterServer:
    name = "filter"

    def __init__(
        self,
        host: IHost,
        subscriptions: FilterSubscriptions | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        push_timeout: float = PUSH_TIMEOUT,
        push_limits: PushLimits | None = None,
        maintenance_interval: float = MAINTENANCE_INTERVAL,
        gate: GateLimits = FILTER_GATE,
        pace: WritePace = DEFAULT_PACE,
    ) -> None:
        self.host = host
        self.gate = ServerGate(gate)
        self.pace = pace
        self.subscriptions = subscriptions or FilterSubscriptions()
        self.rate_limiter = rate_limiter
        self.request_timeout = request_timeout
        self.push_timeout = push_timeout
        self.push_queues = PushQueues(push_limits)
        self.maintenance_interval = maintenance_interval
        self.stats = FilterServerStats()
        self._pushers: dict[str, _Pusher] = {}
        self._nursery: trio.Nursery | None = None
        self._answer_sinks: list[AnswerSink] = []

    def add_answer_sink(self, sink: AnswerSink) -> None:
        """`sink(peer, request, response)` for every request the subscription table answered,
        once its state reflects it (before the response is written)."""
        self._answer_sinks.append(sink)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. Start it with `await nursery.start(server.run)`."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.host.set_stream_handler(TProtocol(SUBSCRIBE_PROTOCOL), self._handle_subscribe)
                nursery.start_soon(self._maintain)
                task_status.started()
        finally:
            self._nursery = None
            self.host.remove_stream_handler(TProtocol(SUBSCRIBE_PROTOCOL))

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Node service entry point; the server already holds its host (`host.libp2p`).
        A full node never closes a subscriber's connection to make room for a newcomer."""
        host.inbound.add_keeper(self.subscribed)
        try:
            await self.run(task_status=task_status)
        finally:
            host.inbound.remove_keeper(self.subscribed)

    def subscribed(self, peer: Hashable) -> bool:
        return self.subscriptions.is_subscribed(str(peer), trio.current_time())

    # -- subscribe requests ----------------------------------------------------------------

    async def _handle_subscribe(self, stream: INetStream) -> None:
        peer = remote_peer(stream)
        response = None
        ticket = self.gate.enter(peer)
        try:
            if isinstance(ticket, Shed):
                response = _refusal(ticket)
            else:
                response = await self._answer(stream, peer, ticket)
            if response is not None:
                self.stats.requests[response.status_code] += 1
                frame = encode_frame(response.encode())
                if not await write_paced(stream, (frame,), self.pace):
                    response = None  # not taken in time: its stream is reset
                    if isinstance(ticket, Ticket):
                        self.gate.slow_reader(ticket)
        except STREAM_ERRORS as exc:
            log.debug("filter subscribe stream from %s failed: %r", peer, exc)
        finally:
            if isinstance(ticket, Ticket):
                self.gate.leave(ticket)
            await end_served_stream(stream, answered=response is not None)
        if not self.subscriptions.is_subscribed(peer, trio.current_time()):
            self._stop_pusher(peer)

    async def _answer(
        self, stream: INetStream, peer: str, ticket: Ticket
    ) -> SubscribeResponse | None:
        if self.rate_limiter is not None and not self.rate_limiter.allow(peer, trio.current_time()):
            return rate_limited_response()  # nwaku does not read the body of a rejected request
        with trio.move_on_after(self.request_timeout):
            frame = b""
            try:
                with self.gate.reading(ticket):
                    frame = await read_frame(stream, MAX_FRAME_SIZE)
            except FramingError as exc:
                self.stats.broken_requests += 1
                log.debug("bad filter subscribe frame from %s: %s", peer, exc)
                return None
            if ticket.evicted:
                return None  # another request needed its place: its stream is reset
            try:
                request = SubscribeRequest.decode(frame)
            except FilterWireError as exc:
                return bad_request_response(str(exc))
            response = self.subscriptions.handle(peer, request, trio.current_time())
            for sink in self._answer_sinks:
                sink(peer, request, response)
            return response
        self.stats.idle_streams_closed += 1
        return None

    # -- pushes ----------------------------------------------------------------------------

    def on_message(self, pubsub_topic: str, message: WakuMessage) -> int:
        """Queue a relayed message for its subscribers; returns how many it was queued for."""
        if self._nursery is None:
            raise RuntimeError("FilterServer.on_message called while the server is not running")
        peers = self.subscriptions.subscribers_for(pubsub_topic, message, trio.current_time())
        if not peers:
            return 0
        frame = encode_frame(MessagePush(message, pubsub_topic).encode())
        pushers = []
        for peer in peers:
            pusher = self._pushers.get(peer)
            if pusher is None:
                pusher = self._pushers[peer] = _Pusher(peer, self.push_queues.open(peer))
                self._nursery.start_soon(self._push_loop, pusher)
            pushers.append(pusher)
        dropped_before = self.push_queues.dropped.copy()
        queued = self.push_queues.offer((p.queue for p in pushers), frame)
        self.stats.pushes_dropped.update(self.push_queues.dropped - dropped_before)
        for pusher in pushers:
            pusher.wake.set()
        return queued

    def queued_frames(self, peer: str) -> int:
        pusher = self._pushers.get(peer)
        return pusher.queue.queued_frames if pusher else 0

    def queued_bytes(self, peer: str) -> int:
        pusher = self._pushers.get(peer)
        return pusher.queue.queued_bytes if pusher else 0

    async def _push_loop(self, pusher: _Pusher) -> None:
        try:
            with pusher.cancel_scope:
                while True:
                    frame = pusher.queue.take()
                    if frame is None:
                        await pusher.wake.wait()
                        pusher.wake = trio.Event()
                        continue
                    try:
                        await self._push(pusher, frame)
                    finally:
                        pusher.queue.done()
        finally:
            pusher.queue.close()
            if pusher.stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await close_quietly(pusher.stream)
            if self._pushers.get(pusher.peer) is pusher:
                del self._pushers[pusher.peer]

    async def _push(self, pusher: _Pusher, frame: bytes) -> None:
        peer_id = ID.from_base58(pusher.peer)
        if pusher.stream is None and not self.host.get_network().get_connections(peer_id):
            # Like nwaku, push only over an existing connection; never dial a subscriber.
            self.stats.pushes_dropped["not_connected"] += 1
            return
        try:
            with trio.fail_after(self.push_timeout):
                if pusher.stream is None:
                    pusher.stream = await self.host.new_stream(peer_id, [TProtocol(PUSH_PROTOCOL)])
                await pusher.stream.write(frame)
            self.stats.pushes_sent += 1
        except _PUSH_ERRORS as exc:
            log.debug("filter push to %s failed: %r", pusher.peer, exc)
            self.stats.pushes_dropped["stream_failed"] += 1
            if pusher.stream is not None:
                stream, pusher.stream = pusher.stream, None
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    try:
                        await stream.reset()
                    except STREAM_ERRORS:
                        pass

    def _stop_pusher(self, peer: str) -> None:
        pusher = self._pushers.pop(peer, None)
        if pusher is not None:
            pusher.queue.close()  # frames still queued are for a lapsed subscription
            pusher.cancel_scope.cancel()

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await trio.sleep(self.maintenance_interval)
            for peer in self.subscriptions.expire(trio.current_time()):
                self._stop_pusher(peer)


def _refusal(reason: Shed) -> SubscribeResponse:
    if reason is Shed.PEER_BUSY:
        return rate_limited_response()
    return SubscribeResponse(
        rate_limited_response().request_id,
        FilterStatus.SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE: too many requests in progress",
    )
