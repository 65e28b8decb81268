"""Trio driver binding the sans-IO relay router to a py-libp2p host.

Per relay peer: one outbound `/vac/waku/relay/2.0.0` stream we write to from a bounded send
queue, and the peer's inbound stream we read bounded frames from. Connections are learnt from
the network notifee API. Uses only the host's public interface: set_stream_handler,
new_stream, get_network().register_notifee / get_connections, get_id, disconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.abc import INotifee
from libp2p.network.stream.exceptions import StreamEOF

from chat.waku.framing import FrameDecoder, FramingError
from chat.waku.relay.core import Deliver, Disconnect, NoPeersReached, Router, Send
from chat.waku.relay.faults import RelayFaults
from chat.waku.relay.metrics import RelayCounters
from chat.waku.relay.sendqueue import SendQueue
from chat.waku.relay.traffic import RelayTraffic
from chat.waku.relay.wire import RELAY_PROTOCOL

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
WRITE_BATCH = 64 * 1024
DROP_LOG_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class DriverLimits:
    send_queue_frames: int = 8192
    """Sized in time: at the ~10-20k msg/s one relay forwards, a peer that is not scheduled
    for a few hundred ms (a busy machine) must not cost drops. Memory is bounded by bytes."""
    send_queue_bytes: int = 8 * 1024 * 1024
    delivery_buffer: int = 4096
    open_stream_timeout: float = 10.0
    partial_frame_timeout: float = 30.0
    """A frame must arrive whole within this after its first byte, or the stream is reset."""
    inbound_wait: float = 15.0
    """How long an inbound stream may wait for our own stream to that peer to open."""
    publish_wait: float = 1.0
    """How long `wait_for_room` waits for full send queues to drain before giving up."""


@dataclass(slots=True)
class _Peer:
    queue: SendQueue
    ready: trio.Event = field(default_factory=trio.Event)
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)
    inbound_cancel: trio.CancelScope | None = None
    drops_unlogged: int = 0
    last_drop_log: float | None = None


class _Notifee(INotifee):
    def __init__(self, driver: RelayDriver) -> None:
        self._driver = driver

    async def connected(self, network: Any, conn: Any) -> None:
        self._driver._on_connected(conn)

    async def disconnected(self, network: Any, conn: Any) -> None:
        self._driver._on_disconnected(network, conn)

    async def opened_stream(self, network: Any, stream: Any) -> None:
        pass

    async def closed_stream(self, network: Any, stream: Any) -> None:
        pass

    async def listen(self, network: Any, multiaddr: Any) -> None:
        pass

    async def listen_close(self, network: Any, multiaddr: Any) -> None:
        pass


class RelayDriver:
    def __init__(
        self,
        host: Any,
        router: Router | None = None,
        *,
        limits: DriverLimits | None = None,
        clock: Callable[[], float] = trio.current_time,
        faults: RelayFaults | None = None,
        traffic: RelayTraffic | None = None,
    ) -> None:
        self.host = host
        self.faults = faults
        self.traffic = traffic
        """Counts the frames by kind for the bandwidth meter (traffic.py), if given."""
        self.router = router or Router()
        self.counters: RelayCounters = self.router.counters
        self.limits = limits or DriverLimits()
        self._clock = clock
        self._peers: dict[Hashable, _Peer] = {}
        self._subscriptions: dict[str, trio.MemorySendChannel[Deliver]] = {}
        self._nursery: trio.Nursery | None = None
        self._delivery_drop_logged: float | None = None
        self._waiters: list[tuple[Callable[[Router], bool], trio.Event]] = []

    # ---- lifecycle -------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve relay until cancelled."""
        network = self.host.get_network()
        notifee = _Notifee(self)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.host.set_stream_handler(RELAY_PROTOCOL, self._handle_inbound)
            network.register_notifee(notifee)
            try:
                for conn in network.get_connections():
                    self._on_connected(conn)
                nursery.start_soon(self._heartbeat_loop)
                task_status.started()
                await trio.sleep_forever()
            finally:
                network.remove_notifee(notifee)
                for peer in self._peers.values():
                    peer.queue.close()
                for channel in self._subscriptions.values():
                    channel.close()

    async def _heartbeat_loop(self) -> None:
        interval = self.router.params.heartbeat_interval
        while True:
            await trio.sleep(interval)
            self.router.heartbeat(self._clock())
            self._dispatch()

    # ---- app API ---------------------------------------------------------------------------

    def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[Deliver]:
        """Join `topic`; its messages arrive on the returned channel (bounded: a full channel
        drops and counts messages rather than slowing the relay)."""
        if topic in self._subscriptions:
            raise ValueError(f"already subscribed to {topic}")
        send, receive = trio.open_memory_channel[Deliver](self.limits.delivery_buffer)
        self._subscriptions[topic] = send
        self.router.subscribe(topic, self._clock())
        self._dispatch()
        return receive

    def unsubscribe(self, topic: str) -> None:
        channel = self._subscriptions.pop(topic, None)
        if channel is not None:
            channel.close()
        self.router.unsubscribe(topic, self._clock())
        self._dispatch()

    def publish(self, topic: str, data: bytes) -> int:
        """Publish `data` (an encoded WakuMessage); returns how many peers' send queues took
        it. Raises NoPeersReached when none did: the message is then not published at all
        (the router forgets it), so the caller may publish the same bytes again."""
        self._dispatch()  # what the router already had waiting goes first, and is not counted
        reached = 0
        for send in self.router.publish_sends(topic, data, self._clock()):
            reached += self._queue(send)
        if reached == 0:
            self.router.retract(data)
            raise NoPeersReached(topic)
        if self._waiters:
            self._check_waiters()
        return reached

    async def wait_for_room(self, topic: str) -> bool:
        """Waits until the send queue of every relay peer subscribed to `topic` is at most half
        full, so a publisher with many messages goes at the network's pace instead of having
        them dropped. Gives up after `limits.publish_wait` (a stalled peer must not stall the
        publisher: what does not fit is then dropped and counted as usual). True if there
        was room."""
        full = self._full_queues(topic)
        if not full:  # the common case, without a cancel scope per message
            return True
        with trio.move_on_after(self.limits.publish_wait):
            while full:
                await full[0].wait_for_room()
                full = self._full_queues(topic)
            return True
        return False

    def _full_queues(self, topic: str) -> list[SendQueue]:
        return [
            state.queue
            for peer in self.router.topic_peers.get(topic, ())
            if (state := self._peers.get(peer)) is not None and not state.queue.has_room()
        ]

    async def wait_until(self, condition: Callable[[Router], bool]) -> None:
        """Returns once `condition(router)` holds, e.g. enough peers in a topic's mesh;
        checked after every router event."""
        if condition(self.router):
            return
        event = trio.Event()
        self._waiters.append((condition, event))
        await event.wait()

    @property
    def relay_peers(self) -> list[Hashable]:
        return [peer for peer, state in self._peers.items() if state.ready.is_set()]

    # ---- actions ---------------------------------------------------------------------------

    def _dispatch(self) -> int:
        """Carries out the router's actions; returns how many frames were queued."""
        queued = 0
        for action in self.router.take_actions():
            if isinstance(action, Send):
                queued += self._queue(action)
            elif isinstance(action, Deliver):
                channel = self._subscriptions.get(action.topic)
                if channel is None:
                    continue
                try:
                    channel.send_nowait(action)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._count_delivery_drop(action.topic)
            elif isinstance(action, Disconnect):
                log.info("disconnecting relay peer %s: %s", action.peer, action.reason)
                if self._nursery is not None:
                    self._nursery.start_soon(self._disconnect, action.peer)
        if self._waiters:
            self._check_waiters()
        return queued

    def _queue(self, send: Send) -> bool:
        peer = self._peers.get(send.peer)
        if peer is not None and self.faults is not None and self.faults.lose():
            return True  # lost on the link: to the sender it looks sent
        if peer is not None and peer.queue.put(send.frame):
            if self.traffic is not None:
                self.traffic.sent(send.frame)
            return True
        self._count_send_drop(send.peer, peer)
        return False

    def _check_waiters(self) -> None:
        pending = []
        for condition, event in self._waiters:
            if condition(self.router):
                event.set()
            elif not event.is_set():
                pending.append((condition, event))
        self._waiters = pending

    def _count_send_drop(self, peer_id: Hashable, peer: _Peer | None) -> None:
        self.counters.send_queue_drops += 1
        if peer is None:
            return
        peer.drops_unlogged += 1
        now = self._clock()
        if peer.last_drop_log is None or now - peer.last_drop_log >= DROP_LOG_INTERVAL:
            log.warning(
                "relay send queue to %s is full: dropped %d frame(s) since the last warning",
                peer_id,
                peer.drops_unlogged,
            )
            peer.last_drop_log = now
            peer.drops_unlogged = 0

    def _count_delivery_drop(self, topic: str) -> None:
        self.counters.delivery_drops += 1
        now = self._clock()
        last = self._delivery_drop_logged
        if last is None or now - last >= DROP_LOG_INTERVAL:
            log.warning(
                "relay messages on %s are not being read fast enough: %d dropped in total",
                topic,
                self.counters.delivery_drops,
            )
            self._delivery_drop_logged = now

    async def _disconnect(self, peer_id: Any) -> None:
        try:
            await self.host.disconnect(peer_id)
        except Exception:
            log.debug("disconnecting %s failed", peer_id, exc_info=True)
        self._forget(peer_id)

    # ---- connections -----------------------------------------------------------------------

    def _on_connected(self, conn: Any) -> None:
        direction = getattr(conn, "direction", None)
        outbound = str(getattr(direction, "name", direction)).upper() == "OUTBOUND"
        self._ensure_peer(conn.muxed_conn.peer_id, outbound)

    def _ensure_peer(self, peer_id: Any, outbound: bool) -> _Peer | None:
        peer = self._peers.get(peer_id)
        if peer is not None or self._nursery is None:
            return peer
        peer = _Peer(SendQueue(self.limits.send_queue_frames, self.limits.send_queue_bytes))
        self._peers[peer_id] = peer
        self._nursery.start_soon(self._run_peer, peer_id, peer, outbound)
        return peer

    def _on_disconnected(self, network: Any, conn: Any) -> None:
        peer_id = conn.muxed_conn.peer_id
        if network.get_connections(peer_id):
            return
        self._forget(peer_id)

    def _forget(self, peer_id: Hashable) -> None:
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        peer.cancel.cancel()
        if peer.inbound_cancel is not None:
            peer.inbound_cancel.cancel()
        peer.queue.close()
        self.router.remove_peer(peer_id, self._clock())
        self._dispatch()

    async def _run_peer(self, peer_id: Any, peer: _Peer, outbound: bool) -> None:
        """Open our stream to the peer, then write its queue until something breaks."""
        stream = None
        with peer.cancel:
            try:
                with trio.fail_after(self.limits.open_stream_timeout):
                    stream = await self.host.new_stream(peer_id, [RELAY_PROTOCOL])
            except Exception:
                log.debug("%s does not speak relay", peer_id, exc_info=True)
                if self._peers.get(peer_id) is peer:
                    del self._peers[peer_id]
                return
            address = _remote_ip(stream)
            self.router.add_peer(peer_id, self._clock(), outbound=outbound, ip=address)
            peer.ready.set()
            self._dispatch()
            try:
                while True:
                    batch = await peer.queue.get_batch(WRITE_BATCH)
                    await stream.write(batch)
            except trio.EndOfChannel:
                pass
            except Exception:
                self.counters.stream_errors += 1
                log.debug("relay stream to %s failed", peer_id, exc_info=True)
        if stream is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                await _reset(stream)
        if self._peers.get(peer_id) is peer:
            self._forget(peer_id)

    async def _handle_inbound(self, stream: Any) -> None:
        """The peer's stream to us: bounded frames in, router events out."""
        peer_id = stream.muxed_conn.peer_id
        # The peer's stream can beat the connection notification: then it dialled us.
        peer = self._ensure_peer(peer_id, outbound=False)
        if peer is None:
            await _reset(stream)
            return
        with trio.move_on_after(self.limits.inbound_wait):
            await peer.ready.wait()
        if not peer.ready.is_set() or self._peers.get(peer_id) is not peer:
            await _reset(stream)
            return
        if peer.inbound_cancel is not None:
            # One inbound stream per peer: a newer one replaces the older.
            peer.inbound_cancel.cancel()
        scope = peer.inbound_cancel = trio.CancelScope()
        try:
            with scope:
                await self._read_frames(peer_id, stream)
        finally:
            if peer.inbound_cancel is scope:
                peer.inbound_cancel = None
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                await _reset(stream)

    async def _read_frames(self, peer_id: Any, stream: Any) -> None:
        router = self.router
        decoder = FrameDecoder(router.params.max_rpc_frame_size)
        partial_since: float | None = None
        while True:
            deadline = (
                float("inf")
                if partial_since is None
                else partial_since + self.limits.partial_frame_timeout
            )
            chunk = b""
            with trio.move_on_at(deadline) as scope:
                try:
                    chunk = await stream.read(READ_CHUNK)
                except StreamEOF:
                    return
                except Exception:
                    self.counters.stream_errors += 1
                    log.debug("relay stream from %s failed", peer_id, exc_info=True)
                    return
            if scope.cancelled_caught:
                log.info("relay peer %s stalled in the middle of a frame", peer_id)
                self.counters.stream_errors += 1
                router.penalise(peer_id)
                return
            if not chunk:
                return
            try:
                frames = decoder.feed(chunk)
            except FramingError as exc:
                log.info("relay peer %s sent a bad frame: %s", peer_id, exc)
                self.counters.rpcs_malformed += 1
                router.penalise(peer_id)
                return
            now = self._clock()
            traffic = self.traffic
            for frame in frames:
                if traffic is not None:
                    traffic.received(frame)
                router.handle_rpc(peer_id, frame, now)
            if not decoder.buffered:
                partial_since = None
            elif partial_since is None:
                partial_since = now
            self._dispatch()


def _remote_ip(stream: Any) -> str | None:
    try:
        address = stream.get_remote_address()
    except Exception:
        return None
    return str(address[0]) if address else None


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:
        log.debug("resetting a relay stream failed", exc_info=True)
