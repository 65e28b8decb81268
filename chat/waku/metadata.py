"""Waku metadata (66/WAKU2-METADATA): the cluster/shard handshake on every connection.

Both sides of a new connection, inbound or outbound, ask the other for its cluster id and
shards. A peer on another cluster, or one that does not say, gets disconnected and its
addresses forgotten (what nwaku does; nwaku in turn drops us if we do not answer).

Wire: request and response are the same message. We write the shards twice, like nwaku:
field 2 unpacked (js-waku reads only that) and field 3 packed (nwaku >= 0.26, go-waku). We read
field 3 if it holds anything, else field 2, either packed or not.

The pure parts (codec, verdict, the per-peer book with its stream accounting) are plain code;
`MetadataService` is the trio driver that moves the bytes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import trio
from google.protobuf.message import DecodeError
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.net_stream import NetStream
from libp2p.peer.id import ID

from chat.waku.framing import read_frame, write_frame
from chat.waku.host import ConnectionEventKind, TaskStatusLike, WakuHost
from chat.waku.proto.metadata_pb2 import WakuMetadataRequest, WakuMetadataResponse

log = logging.getLogger(__name__)

METADATA_PROTOCOL = TProtocol("/vac/waku/metadata/1.0.0")
MAX_METADATA_FRAME = 1024
"""nwaku's read limit for this protocol."""
MAX_SHARD = 1023
REQUEST_TIMEOUT = 10.0
"""Seconds a peer has to answer our request before we treat it as not speaking metadata."""
IDLE_STREAM_TIMEOUT = 120.0
"""Seconds an inbound stream may stay silent. js-waku opens metadata streams ahead of use and
leaves them idle until it needs one, so this is generous; a silent stream costs one task."""
MAX_INBOUND_STREAMS_PER_PEER = 8
"""Inbound metadata streams one peer may hold open at once; more are reset at once."""


class MetadataError(ValueError):
    """A metadata message that cannot be decoded."""


@dataclass(frozen=True)
class ShardInfo:
    cluster_id: int | None
    shards: tuple[int, ...]


def encode_metadata(cluster_id: int, shards: Iterable[int]) -> bytes:
    """One metadata message (request and response are byte-identical for the same data)."""
    ordered = sorted(set(shards))
    msg = WakuMetadataRequest(cluster_id=cluster_id, shards=ordered, shards_v2=ordered)
    return msg.SerializeToString()


def decode_metadata(data: bytes) -> ShardInfo:
    if len(data) > MAX_METADATA_FRAME:
        raise MetadataError(f"metadata message of {len(data)} bytes is over the limit")
    try:
        msg = WakuMetadataResponse.FromString(data)
    except DecodeError as exc:
        raise MetadataError(f"not a metadata message: {exc}") from None
    shards = tuple(msg.shards_v2) if len(msg.shards_v2) else tuple(msg.shards)
    if any(s > MAX_SHARD for s in shards):
        raise MetadataError(f"shard numbers must be at most {MAX_SHARD}")
    cluster = msg.cluster_id if msg.HasField("cluster_id") else None
    return ShardInfo(cluster_id=cluster, shards=tuple(sorted(set(shards))))


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG_CLUSTER = "wrong-cluster"
    NO_CLUSTER = "no-cluster"
    NO_ANSWER = "no-answer"
    """The peer refused the protocol, timed out, or answered with garbage."""


def judge(own_cluster: int, remote: ShardInfo | None) -> Verdict:
    """Whether a peer may stay. Shards never decide this: the spec says not to drop on them."""
    if remote is None:
        return Verdict.NO_ANSWER
    if remote.cluster_id is None:
        return Verdict.NO_CLUSTER
    if remote.cluster_id != own_cluster:
        return Verdict.WRONG_CLUSTER
    return Verdict.ACCEPTED


@dataclass(frozen=True)
class MetadataOutcome:
    peer_id: ID
    verdict: Verdict
    remote: ShardInfo | None
    detail: str = ""


class MetadataBook:
    """What each connected peer told us about itself, and its open inbound streams."""

    def __init__(self, max_inbound_per_peer: int = MAX_INBOUND_STREAMS_PER_PEER) -> None:
        self.max_inbound_per_peer = max_inbound_per_peer
        self._info: dict[ID, ShardInfo] = {}
        self._inbound: dict[ID, int] = {}

    def record(self, peer_id: ID, info: ShardInfo) -> None:
        self._info[peer_id] = info

    def get(self, peer_id: ID) -> ShardInfo | None:
        return self._info.get(peer_id)

    def forget(self, peer_id: ID) -> None:
        self._info.pop(peer_id, None)

    def peers_on(self, cluster_id: int, shard: int) -> list[ID]:
        return [
            p for p, i in self._info.items() if i.cluster_id == cluster_id and shard in i.shards
        ]

    def open_inbound(self, peer_id: ID) -> bool:
        """Count a new inbound stream; False when the peer already holds its maximum."""
        count = self._inbound.get(peer_id, 0)
        if count >= self.max_inbound_per_peer:
            return False
        self._inbound[peer_id] = count + 1
        return True

    def close_inbound(self, peer_id: ID) -> None:
        count = self._inbound.get(peer_id, 0) - 1
        if count > 0:
            self._inbound[peer_id] = count
        else:
            self._inbound.pop(peer_id, None)

    def inbound_streams(self, peer_id: ID) -> int:
        return self._inbound.get(peer_id, 0)


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
        host.libp2p.set_stream_handler(METADATA_PROTOCOL, self._handle_inbound)
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
        stream = await host.libp2p.new_stream(peer, [METADATA_PROTOCOL])
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
