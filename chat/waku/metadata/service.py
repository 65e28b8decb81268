"""Waku metadata as a node service: the cluster/shard handshake on every connection.

Both sides of a new connection, inbound or outbound, ask the other for its cluster id and
shards (wire.py). A peer on another cluster, or one that does not say (core.py's verdict),
gets disconnected and its addresses forgotten; nwaku in turn drops us if we do not answer.
`MetadataService` moves the bytes; every `Node` mounts one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.net_stream import NetStream
from libp2p.peer.id import ID

from chat.waku.framing import read_frame, write_frame
from chat.waku.host import ConnectionEventKind, TaskStatusLike, WakuHost
from chat.waku.metadata.core import MetadataBook, MetadataOutcome, Verdict, judge
from chat.waku.metadata.wire import (
    MAX_METADATA_FRAME,
    METADATA_PROTOCOL,
    MetadataError,
    ShardInfo,
    decode_metadata,
    encode_metadata,
)

log = logging.getLogger(__name__)

PROTOCOL = TProtocol(METADATA_PROTOCOL)
REQUEST_TIMEOUT = 10.0
"""Seconds a peer has to answer our request before we treat it as not speaking metadata."""
IDLE_STREAM_TIMEOUT = 120.0
"""Seconds an inbound stream may stay silent. js-waku opens metadata streams ahead of use and
leaves them idle until it needs one, so this is generous; a silent stream costs one task."""


class MetadataService:
    """Serves metadata and runs the handshake on every new connection of a `WakuHost`."""

    name = "metadata"

    def __init__(
        self,
        cluster_id: int,
        shards: Iterable[int],
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        idle_stream_timeout: float = IDLE_STREAM_TIMEOUT,
    ) -> None:
        self.cluster_id = cluster_id
        self.shards = tuple(sorted(set(shards)))
        self.request_timeout = request_timeout
        self.idle_stream_timeout = idle_stream_timeout
        self.book = MetadataBook()
        self._message = encode_metadata(cluster_id, self.shards)
        self._subscribers: list[trio.MemorySendChannel[MetadataOutcome]] = []
        self._handshakes: dict[ID, trio.CancelScope] = {}
        self.idle_streams_timed_out = 0
        self.streams_refused = 0

    def subscribe(self, buffer: int = 256) -> trio.MemoryReceiveChannel[MetadataOutcome]:
        """Every handshake outcome from now on; a subscriber that falls behind misses some."""
        send, receive = trio.open_memory_channel[MetadataOutcome](buffer)
        self._subscribers.append(send)
        return receive

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Answer requests and shake hands on new connections until cancelled."""
        events = host.events.subscribe()
        host.libp2p.set_stream_handler(PROTOCOL, self._handle_inbound)
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for event in events:
                peer = event.peer_id
                if event.kind is ConnectionEventKind.OPENED:
                    if peer not in self._handshakes:
                        scope = trio.CancelScope()
                        self._handshakes[peer] = scope
                        nursery.start_soon(self._handshake, host, peer, scope)
                elif not host.is_connected(peer):
                    if peer in self._handshakes:
                        self._handshakes.pop(peer).cancel()
                    self.book.forget(peer)

    async def _handle_inbound(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        if not self.book.open_inbound(peer):
            self.streams_refused += 1
            await _reset(stream)
            return
        try:
            with trio.move_on_after(self.idle_stream_timeout) as idle:
                request = await read_frame(stream, MAX_METADATA_FRAME)
            if idle.cancelled_caught:
                self.idle_streams_timed_out += 1
                log.debug("metadata stream from %s stayed silent; reset", peer)
                await _reset(stream)
                return
            await write_frame(stream, self._message)
            await stream.close()
            try:
                self.book.record(peer, decode_metadata(request))
            except MetadataError as exc:
                log.info("metadata request from %s is malformed: %s", peer, exc)
        except Exception as exc:
            # Any stream failure ends this exchange only; the connection is the handshake's call.
            log.debug("metadata stream from %s failed: %r", peer, exc)
            await _reset(stream)
        finally:
            self.book.close_inbound(peer)

    async def _handshake(self, host: WakuHost, peer: ID, scope: trio.CancelScope) -> None:
        remote: ShardInfo | None = None
        detail = ""
        with scope:
            try:
                with trio.fail_after(self.request_timeout):
                    remote = await self._request(host, peer)
            except trio.TooSlowError:
                detail = f"no answer within {self.request_timeout:g} s"
            except MetadataError as exc:
                detail = str(exc)
            except Exception as exc:
                detail = f"request failed: {exc!r}"
        if scope.cancelled_caught:
            self._handshakes.pop(peer, None)
            return  # the connection went away first
        verdict = judge(self.cluster_id, remote)
        if verdict is Verdict.ACCEPTED and remote is not None:
            self.book.record(peer, remote)
            log.info("peer %s: cluster %s shards %s", peer, remote.cluster_id, list(remote.shards))
        else:
            if remote is not None:
                detail = f"cluster {remote.cluster_id}, ours is {self.cluster_id}"
            log.info("disconnecting %s: metadata %s (%s)", peer, verdict.value, detail)
            self.book.forget(peer)
            await host.disconnect(peer, forget=True)
        self._publish(MetadataOutcome(peer, verdict, remote, detail))
        # Keep the entry until the peer disconnects, so a second connection reuses this result.
        if verdict is not Verdict.ACCEPTED:
            self._handshakes.pop(peer, None)

    async def _request(self, host: WakuHost, peer: ID) -> ShardInfo:
        stream = await host.libp2p.new_stream(peer, [PROTOCOL])
        try:
            await write_frame(stream, self._message)
            if isinstance(stream, NetStream):
                await stream.close_write()  # half-close: the peer answers after our EOF
            response = await read_frame(stream, MAX_METADATA_FRAME)
        except BaseException:
            await _reset(stream)
            raise
        await stream.close()
        return decode_metadata(response)

    def _publish(self, outcome: MetadataOutcome) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(outcome)
            except trio.WouldBlock:
                log.warning("metadata outcome for %s dropped: subscriber is full", outcome.peer_id)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)


async def _reset(stream: INetStream) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.reset()
        except Exception as exc:
            log.debug("stream reset failed: %r", exc)
