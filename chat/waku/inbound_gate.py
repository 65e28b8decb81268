"""The libp2p listener's front door: every inbound connection passes InboundAdmission
(chat/waku/inbound_limits.py) before and while py-libp2p upgrades it.

Why it replaces py-libp2p 0.8.1's own inbound handler (`Swarm._handle_inbound_connection`):
that handler takes a slot of a CapacityLimiter sized max_connections - min_connections
(300 - 50 = 250) for every accepted socket and refuses sockets when none is left. The slot
is held by an idle socket for the whole upgrade timeout (30 s here), so 250 idle sockets
lock every new peer out; worse, after a successful upgrade the handler waits for the
*swarm* to finish, not the connection, so the slot is never given back: after 250 inbound
connections in its lifetime a node accepted no more (measured: the 251st dial failed).

What this handler does instead, per accepted socket:
1. admission (limits per source and in total; the idle evicted first);
2. the idle phase, kept cheap on purpose: one read waiting for the dialer's first bytes, no
   py-libp2p machinery yet. An attacker holding sockets makes the node close some, and he
   reopens them; if each cost the node more than it costs him, the kernel's accept queue
   (py-libp2p listens with a backlog of 128) would stay full and drop a real dialer's SYN;
3. py-libp2p's Noise + muxer upgrade, under the handshake deadline;
4. if the node is now over `max_connections` (both directions), an open inbound connection
   is closed to make room (the core's `make_room`: never one a keeper values, such as a
   relay mesh peer or a filter subscriber; else the longest idle of the source holding the
   most), which may be the newcomer itself;
5. the socket is kept until the connection ends (trio closes it when the handler returns).
So that 4. can run after the handshake, the swarm is configured with room for the pending
connections on top of `max_connections` (chat/waku/host.py): py-libp2p refuses a
connection before its handshake once that many are open, and we decide after it.
Sheds fail the socket (its reads end) instead of cancelling py-libp2p: cancelled, its
clean-up stops at its first await and leaks a slot of its resource manager every time.
The swarm's allow/deny lists are not consulted (we configure none).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import trio
from libp2p.abc import IMuxedConn, INetConn, INetStream, INetwork, INotifee
from libp2p.io.abc import ReadWriteCloser
from libp2p.io.exceptions import ConnectionClosedError
from libp2p.io.trio import TrioTCPStream
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.inbound_limits import (
    MAX_CONNECTIONS,
    InboundAdmission,
    InboundConnection,
    InboundLimits,
    Outcome,
)

log = logging.getLogger(__name__)

FIRST_READ = 65536
CLOSED_POLL = 1.0
"""How often to look at a muxer that has no closed event (yamux and mplex have one)."""


class _WatchedSocket(ReadWriteCloser):
    """The accepted socket as py-libp2p sees it: it replays the first bytes the gate read,
    and once the connection is shed every read fails at once.

    py-libp2p's handshake readers retry an empty read up to 100 times, one scheduler round
    each; so during the handshake an empty read (the peer hung up, or the gate closed the
    socket) is an error. Once upgraded, the muxer sees the socket as it is.
    """

    def __init__(self, inner: ReadWriteCloser) -> None:
        self.inner = inner
        self._replay = b""
        self.handshaking = True
        self.shed_already = False
        self.cancel_scope: trio.CancelScope | None = None
        """Cancelled on shed when no socket could be closed to wake its reader (neither TCP
        nor a WebSocket over TCP), or while only the gate's own first read runs (cancelling
        that is always safe)."""

    async def first_bytes(self) -> bytes:
        """Wait for the dialer's first bytes (b"" if the socket ended first)."""
        data = await self.inner.read(FIRST_READ)
        self._replay = data
        return b"" if self.shed_already else data

    async def read(self, n: int | None = None) -> bytes:
        if self.shed_already:
            raise ConnectionClosedError("connection shed by the inbound gate", transport="tcp")
        if self._replay:
            size = len(self._replay) if n is None else n
            data, self._replay = self._replay[:size], self._replay[size:]
            return data
        data = await self.inner.read(n)
        if self.handshaking and (self.shed_already or not data):
            raise ConnectionClosedError("closed during the handshake", transport="tcp")
        return data

    async def write(self, data: bytes) -> None:
        if self.shed_already:
            raise ConnectionClosedError("connection shed by the inbound gate", transport="tcp")
        await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()

    def shed(self) -> None:
        """End the connection now: close the socket, which wakes a read blocked on it."""
        self.shed_already = True
        if not _close_now(self.inner) and self.cancel_scope is not None:
            self.cancel_scope.cancel()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self.inner.get_remote_address()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def source_of(stream: Any) -> str:
    """The remote IP address of an accepted socket: TCP, or WebSocket (py-libp2p gives
    trio-websocket a wrapped stream, so its own `remote` cannot name the peer)."""
    try:
        remote = stream.get_remote_address()
    except Exception:
        remote = None
    if remote:
        return str(remote[0])
    sock = _websocket_socket(stream)
    if sock is not None:
        try:
            return str(sock.getpeername()[0])
        except OSError:
            pass
    return "unknown"


def _websocket_socket(stream: Any) -> Any:
    """The TCP socket under an accepted WebSocket, if it can be found."""
    layer = getattr(getattr(stream, "_ws", None), "_stream", None)
    for _ in range(4):  # through PeekableStream / TLS wrappers down to the socket
        sock = getattr(layer, "socket", None)
        if sock is not None and hasattr(sock, "getpeername"):
            return sock
        layer = getattr(layer, "stream", None) or getattr(layer, "transport_stream", None)
    return None


Keeper = Callable[[ID], bool]
"""Whether the node values the peer's connection (it is never closed to make room)."""


class InboundGate:
    """Install with `install(swarm)` before the swarm listens."""

    def __init__(
        self,
        limits: InboundLimits | None = None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.admission = InboundAdmission(limits)
        self.max_connections = max_connections
        self.clock = clock
        self._sockets: dict[int, _WatchedSocket] = {}
        self._open: dict[int, InboundConnection] = {}
        """Open connections by id() of their muxed connection (to see their streams)."""
        self._leaving: set[int] = set()
        """Connections closed to make room that the swarm may still count."""
        self._keepers: list[Keeper] = []

    def add_keeper(self, keeper: Keeper) -> None:
        """Never close a connection of a peer `keeper` values to make room (a relay mesh
        peer, a filter subscriber)."""
        self._keepers.append(keeper)

    def remove_keeper(self, keeper: Keeper) -> None:
        if keeper in self._keepers:
            self._keepers.remove(keeper)

    def install(self, swarm: Swarm) -> None:
        swarm.register_notifee(_StreamActivity(self))
        original = swarm._handle_inbound_connection

        async def handle(read_write_closer: ReadWriteCloser, maddr: Multiaddr) -> None:
            if isinstance(read_write_closer, IMuxedConn):  # QUIC and the like: not ours
                await original(read_write_closer, maddr)
                return
            await self.handle(swarm, read_write_closer, maddr)

        # The listeners call this attribute for every accepted socket.
        swarm._handle_inbound_connection = handle  # type: ignore[method-assign]

    @property
    def counts(self) -> dict[str, int]:
        return {outcome.value: self.admission.counts[outcome] for outcome in Outcome}

    async def handle(self, swarm: Swarm, stream: ReadWriteCloser, maddr: Multiaddr) -> None:
        arrival = self.admission.arrive(source_of(stream), self.clock())
        for victim in arrival.evicted:
            evicted = self._sockets.pop(victim.number, None)
            if evicted is not None:
                evicted.shed()
        connection = arrival.connection
        if connection is None:
            _close_now(stream)
            return
        socket = _WatchedSocket(stream)
        self._sockets[connection.number] = socket
        muxed: IMuxedConn | None = None
        try:
            if await self._first_bytes(socket, connection):
                muxed = await self._upgrade(swarm, socket, maddr, connection)
                if muxed is not None and self.admission.upgraded(
                    connection, self.clock(), muxed.peer_id
                ):
                    self._open[id(muxed)] = connection
                    self._make_room_if_full(swarm, connection)
                    await _wait_closed(muxed)
        finally:
            if muxed is not None:
                self._open.pop(id(muxed), None)
            self._sockets.pop(connection.number, None)
            self._leaving.discard(connection.number)
            self.admission.closed(connection)
            _close_now(stream)

    def stream_opened(self, stream: INetStream) -> None:
        connection = self._open.get(id(stream.muxed_conn))
        if connection is not None:
            self.admission.active(connection, self.clock())

    def _make_room_if_full(self, swarm: Swarm, newcomer: InboundConnection) -> None:
        if len(swarm.get_connections()) - len(self._leaving) <= self.max_connections:
            return
        victim = self.admission.make_room(newcomer, self._kept)
        if victim is None:
            return  # everything is valued: the swarm's room for pending connections holds it
        socket = self._sockets.get(victim.number)
        if socket is not None:
            self._leaving.add(victim.number)
            socket.shed()
        log.debug("connections full: closed one from %s to make room", victim.source)

    def keeps(self, peer: ID) -> bool:
        """Whether a keeper values the peer (its connections are never closed for room)."""
        return any(keeper(peer) for keeper in self._keepers)

    def _kept(self, connection: InboundConnection) -> bool:
        return isinstance(connection.peer, ID) and self.keeps(connection.peer)

    async def _first_bytes(self, socket: _WatchedSocket, conn: InboundConnection) -> bool:
        """The idle phase; False if the connection ended in it (shed, timed out, hung up)."""
        with trio.move_on_at(self._deadline(conn)) as scope:
            socket.cancel_scope = scope
            if await socket.first_bytes():
                socket.cancel_scope = None
                self.admission.first_bytes(conn)
                return True
            self.admission.failed(conn)  # hung up (not counted again if it was shed)
            return False
        socket.cancel_scope = None
        self.admission.timed_out(conn)  # not counted again if it was shed
        return False

    async def _upgrade(
        self, swarm: Swarm, socket: _WatchedSocket, maddr: Multiaddr, conn: InboundConnection
    ) -> IMuxedConn | None:
        """py-libp2p's Noise + muxer upgrade, failed from outside when it runs out of time."""
        async with trio.open_nursery() as nursery:
            watchdog = trio.CancelScope()
            nursery.start_soon(self._watch, conn, socket, watchdog)
            with trio.CancelScope() as fallback:
                if not isinstance(socket.inner, TrioTCPStream):
                    socket.cancel_scope = fallback
                try:
                    muxed = await swarm.upgrade_inbound_raw_conn(
                        RawConnection(socket, False), maddr
                    )
                except Exception as exc:
                    self.admission.failed(conn)  # not counted again if it was shed
                    log.debug("inbound connection from %s failed: %r", conn.source, exc)
                    return None
                finally:
                    socket.cancel_scope = None
                    watchdog.cancel()
                socket.handshaking = False
                return muxed
            return None  # shed by cancelling (transports other than TCP)

    async def _watch(
        self, conn: InboundConnection, socket: _WatchedSocket, scope: trio.CancelScope
    ) -> None:
        with scope:
            await trio.sleep_until(self._deadline(conn))
            self.admission.timed_out(conn)
            socket.shed()

    def _deadline(self, conn: InboundConnection) -> float:
        deadline = self.admission.deadline(conn)
        return math.inf if deadline is None else deadline


class _StreamActivity(INotifee):
    """Tells the gate when a stream opens, for the idle time of open connections."""

    def __init__(self, gate: InboundGate) -> None:
        self.gate = gate

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        self.gate.stream_opened(stream)

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


async def _wait_closed(muxed: IMuxedConn) -> None:
    event = getattr(muxed, "event_closed", None)
    if isinstance(event, trio.Event):
        await event.wait()
        return
    while not muxed.is_closed:  # noqa: ASYNC110 - the interface has no closed event to await
        await trio.sleep(CLOSED_POLL)


def _close_now(stream: ReadWriteCloser) -> bool:
    """Close an accepted socket without waiting (trio wakes any task blocked on it): a TCP
    one, or the TCP socket under a WebSocket. False when there is none to be found (the
    caller then cancels). A WebSocket upgrade shed by cancelling instead kept py-libp2p's
    resource-manager slot and its socket for good: its clean-up stops at the first await."""
    if isinstance(stream, TrioTCPStream):
        stream.stream.socket.close()
        return True
    sock = _websocket_socket(stream)
    if sock is None:
        return False
    sock.close()
    return True
