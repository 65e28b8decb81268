"""Filter v2 light client driver: subscribes through FilterClientCore and receives pushes.

The push handler reads many MessagePush frames from one stream until EOF (nwaku keeps one
push stream open per subscriber; go-waku opens one per push), drops duplicates by hash and
hands each new message to `messages`.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from chat.waku.filter.client_core import Action, Criterion, FilterClientCore, PingResult
from chat.waku.filter.wire import (
    MAX_FRAME_SIZE,
    MAX_RESPONSE_SIZE,
    PUSH_PROTOCOL,
    SUBSCRIBE_PROTOCOL,
    FilterStatus,
    FilterWireError,
    MessagePush,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeType,
)
from chat.waku.framing import FrameReader
from chat.waku.reqres import (
    STREAM_ERRORS,
    ExchangeFailed,
    close_quietly,
    exchange,
    remote_peer,
)

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

REQUEST_TIME_LIMIT = 10.0
DELIVERY_QUEUE = 1024


class FilterClient:
    """Keeps our filter subscriptions alive on service nodes and yields what they push."""

    def __init__(
        self,
        host: IHost,
        service_nodes: Sequence[ID],
        core: FilterClientCore | None = None,
        *,
        request_time_limit: float = REQUEST_TIME_LIMIT,
        delivery_queue: int = DELIVERY_QUEUE,
        accept: Callable[[str, Criterion], bool] | None = None,
    ) -> None:
        """`accept(peer, (pubsub topic, content topic))`: whether a push is for something we
        asked for (a light client scores down nodes pushing anything else); None: all."""
        self.host = host
        self.core = core or FilterClientCore([str(p) for p in service_nodes])
        self._ids = {str(p): p for p in service_nodes}
        self.request_time_limit = request_time_limit
        self._send, self.messages = trio.open_memory_channel[MessagePush](delivery_queue)
        """New (deduplicated) pushes, in arrival order."""
        self._changed = trio.Event()
        self.push_errors: Counter[str] = Counter()
        self._accept = accept
        self.changes: Callable[[], None] | None = None
        """Called after every subscribe or ping answer (the light client's health follows)."""

    def subscribe(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        self.core.subscribe(pubsub_topic, content_topics)
        self._changed.set()

    def unsubscribe(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        self.core.unsubscribe(pubsub_topic, content_topics)
        self._changed.set()

    def wake(self) -> None:
        """Look at the core again now (a node was replaced or a candidate added)."""
        self._changed.set()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled. Start it with `await nursery.start(client.run)`."""
        try:
            async with trio.open_nursery() as nursery:
                self.host.set_stream_handler(TProtocol(PUSH_PROTOCOL), self._handle_push)
                task_status.started()
                while True:
                    for action in self.core.due(trio.current_time()):
                        nursery.start_soon(self._execute, action)
                    wakeup = self.core.next_wakeup(trio.current_time())
                    with trio.move_on_at(math.inf if wakeup is None else wakeup):
                        await self._changed.wait()
                    self._changed = trio.Event()
        finally:
            self.host.remove_stream_handler(TProtocol(PUSH_PROTOCOL))
            self._send.close()

    async def _execute(self, action: Action) -> None:
        request = SubscribeRequest(
            uuid.uuid4().hex, action.kind, action.pubsub_topic, action.content_topics
        )
        response: SubscribeResponse | None = None
        try:
            frame = await exchange(
                self.host,
                self._ids.get(action.peer) or ID.from_base58(action.peer),
                SUBSCRIBE_PROTOCOL,
                request.encode(),
                max_response_size=MAX_RESPONSE_SIZE,
                time_limit=self.request_time_limit,
            )
            response = SubscribeResponse.decode(frame)
        except (ExchangeFailed, FilterWireError) as exc:
            log.info("filter %s to %s failed: %s", action.kind.name, action.peer, exc)
        now = trio.current_time()
        if action.kind is SubscribeType.SUBSCRIBER_PING:
            self.core.on_ping_result(action.peer, _ping_result(response), now)
        else:
            ok = response is not None and response.status_code == FilterStatus.OK
            self.core.on_subscribe_result(action.peer, ok, now)
        self._changed.set()
        if self.changes is not None:
            self.changes()

    async def _handle_push(self, stream: INetStream) -> None:
        peer = remote_peer(stream)
        reader = FrameReader(stream, MAX_FRAME_SIZE)
        try:
            while (frame := await reader.next_frame()) is not None:
                try:
                    push = MessagePush.decode(frame)
                except FilterWireError as exc:
                    self.push_errors["bad_push"] += 1
                    log.debug("bad filter push from %s: %s", peer, exc)
                    continue
                criterion = (push.pubsub_topic, push.message.content_topic)
                if self._accept is not None and not self._accept(peer, criterion):
                    self.push_errors["unrequested"] += 1
                    log.info("filter push from %s for a topic we never asked for", peer)
                    continue
                digest = push.message.hash(push.pubsub_topic)
                if self.core.is_new(digest, trio.current_time()):
                    await self._send.send(push)
        except STREAM_ERRORS as exc:
            self.push_errors["stream_failed"] += 1
            log.debug("filter push stream from %s failed: %r", peer, exc)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                await close_quietly(stream)


def _ping_result(response: SubscribeResponse | None) -> PingResult:
    if response is None:
        return PingResult.FAILED
    if response.status_code == FilterStatus.OK:
        return PingResult.OK
    if response.status_code == FilterStatus.NOT_FOUND:
        return PingResult.NOT_SUBSCRIBED
    return PingResult.FAILED
