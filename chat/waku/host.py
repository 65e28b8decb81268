"""The libp2p host every chinwag node runs on: py-libp2p with the Waku transport stack.

Noise only (py-libp2p would otherwise also offer plaintext, secio and TLS), yamux then mplex
(go-waku speaks only yamux, js-waku only mplex), TCP plus an optional WebSocket listener,
identify and ping (py-libp2p mounts both by default). The identity is a secp256k1 key: Waku
ENRs can only carry secp256k1 identities, and py-libp2p signs Noise payloads with it
(DER ECDSA over SHA-256, the libp2p spec), which js-libp2p verifies.

Inbound connections pass our own front door (chat/waku/inbound_gate.py): limits on
unauthenticated connections per source address and in total, the idle ones evicted first,
deadlines for the first bytes and the handshakes. py-libp2p 0.8.1's own inbound handler
locks every new peer out once 250 sockets are held (or were ever upgraded).

Dial delay: py-libp2p waits a 250 ms "happy eyeballs" head start after starting each dial
unless the dial fails or the per-peer connection cap is reached. With the cap at 1 (which is
also nwaku's limit) a successful dial returns as soon as the connection is up (~5 ms on
loopback instead of ~252 ms).
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.secp256k1 import Secp256k1PrivateKey, create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import LOW_WATERMARK, MIN_CONNECTIONS, ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.rcmgr import ResourceLimits, ResourceManager, new_resource_manager
from libp2p.rcmgr.connection_limits import ConnectionLimits
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from chat.waku.errors import UserError
from chat.waku.inbound_gate import InboundGate
from chat.waku.inbound_limits import MAX_CONNECTIONS, InboundLimits

log = logging.getLogger(__name__)

NODE_KEY_FILE_MODE = 0o600
SECRET_KEY_BYTES = 32
CONNECTION_EVENT_BUFFER = 256
"""Connection events a subscriber may lag behind before further events to it are dropped."""
UPGRADE_TIMEOUT = 30.0
"""Noise and muxer negotiation of one connection, either side (py-libp2p's default is 10 s)."""
DEFAULT_INBOUND_LIMITS = InboundLimits(handshake_timeout=UPGRADE_TIMEOUT)


class TaskStatusLike(Protocol):
    """What `nursery.start` passes as task_status (trio-typing's stubs lack trio.TaskStatus)."""

    def started(self) -> None: ...


MAX_NODE_KEY_FILE_BYTES = 1024
"""A node key file is one line of 64 hex digits; anything much larger is not one (read no
more than this, whatever the file holds)."""


class NodeKeyError(UserError):
    """The node key file cannot be read, parsed or created."""


class HostError(Exception):
    """A dial or address problem; the message names the peer or address."""


class _BindFailed(Exception):
    pass


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def generate_node_key() -> KeyPair:
    return create_new_key_pair()


def node_key_from_secret(secret: bytes) -> KeyPair:
    """The key pair for a 32-byte secp256k1 secret (the same value nwaku's --nodekey takes)."""
    if len(secret) != SECRET_KEY_BYTES:
        raise NodeKeyError(f"a node key is {SECRET_KEY_BYTES} bytes, not {len(secret)}")
    try:
        private = Secp256k1PrivateKey.from_bytes(secret)
    except Exception:
        raise NodeKeyError("the node key is not a valid secp256k1 secret") from None
    return KeyPair(private, private.get_public_key())


def load_or_create_node_key(path: Path) -> KeyPair:
    """Read the node key from `path`, or create it there (mode 0600) if it does not exist.

    The file holds one line: the secp256k1 secret as 64 hex digits, the format nwaku's
    `--nodekey` option uses, so a key can move between implementations.
    """
    try:
        with path.open("rb") as key_file:
            raw = key_file.read(MAX_NODE_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        return _create_node_key_file(path)
    except OSError as exc:
        raise NodeKeyError(f"cannot read the node key file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_NODE_KEY_FILE_BYTES:
        raise NodeKeyError(
            f"the node key file {path} is over {MAX_NODE_KEY_FILE_BYTES} bytes;"
            " it should hold one line of 64 hex digits"
        )
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise NodeKeyError(f"the node key file {path} is not ASCII text") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("node key file %s is readable by others (mode %o); use chmod 600", path, mode)
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        raise NodeKeyError(f"{path} does not hold a hex node key") from None
    return node_key_from_secret(secret)


def _create_node_key_file(path: Path) -> KeyPair:
    key_pair = generate_node_key()
    secret = key_pair.private_key.to_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two nodes started at once must not overwrite each other's fresh key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NODE_KEY_FILE_MODE)
    except FileExistsError:
        return load_or_create_node_key(path)
    except OSError as exc:
        raise NodeKeyError(f"cannot create the node key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret.hex() + "\n")
        out.flush()
        os.fsync(out.fileno())
    log.info("created node key %s", path)
    return key_pair


class Direction(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    UNKNOWN = "unknown"


class ConnectionEventKind(enum.Enum):
    OPENED = "opened"
    CLOSED = "closed"


@dataclass(frozen=True)
class ConnectionEvent:
    kind: ConnectionEventKind
    peer_id: ID
    direction: Direction
    remote_addr: Multiaddr | None
    muxer: str


def _direction_of(conn: INetConn) -> Direction:
    raw = getattr(conn, "direction", None)
    name = str(getattr(raw, "name", raw) or "").lower()
    if "inbound" in name:
        return Direction.INBOUND
    if "outbound" in name:
        return Direction.OUTBOUND
    return Direction.UNKNOWN


def _remote_addr_of(conn: INetConn) -> Multiaddr | None:
    try:
        addrs = conn.get_transport_addresses()
    except Exception:
        return None
    return addrs[0] if addrs else None


class ConnectionEvents(INotifee):
    """Fans py-libp2p's connect/disconnect notifications out to subscriber channels.

    The swarm awaits notifees on its connection path, so nothing here may block: each
    subscriber has a bounded channel, and a subscriber that falls behind loses events
    (counted and logged) instead of stalling every connection of the node.
    """

    def __init__(self) -> None:
        self._subscribers: list[trio.MemorySendChannel[ConnectionEvent]] = []
        self.dropped = 0

    def subscribe(
        self, buffer: int = CONNECTION_EVENT_BUFFER
    ) -> trio.MemoryReceiveChannel[ConnectionEvent]:
        send, receive = trio.open_memory_channel[ConnectionEvent](buffer)
        self._subscribers.append(send)
        return receive

    def _publish(self, event: ConnectionEvent) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
                log.warning("connection event for %s dropped: subscriber is full", event.peer_id)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    def _event(self, kind: ConnectionEventKind, conn: INetConn) -> ConnectionEvent:
        muxed = conn.muxed_conn
        return ConnectionEvent(
            kind=kind,
            peer_id=muxed.peer_id,
            direction=_direction_of(conn),
            remote_addr=_remote_addr_of(conn),
            muxer=type(muxed).__name__.lower(),
        )

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._publish(self._event(ConnectionEventKind.OPENED, conn))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._publish(self._event(ConnectionEventKind.CLOSED, conn))

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


LISTENER_CLOSE_TIMEOUT = 2.0


async def _close_listeners(network: INetwork) -> None:
    """Close the listening sockets even when the node stops by cancellation.

    py-libp2p 0.8.1 closes them in its own shutdown, but that runs unshielded: stopped by a
    cancel, the socket stays open, keeps accepting and handshaking for a host that is gone,
    and (SO_REUSEPORT) shares the port with a node restarted on it, which then loses half of
    its incoming connections.
    """
    listeners = getattr(network, "listeners", {})
    with trio.CancelScope(shield=True), trio.move_on_after(LISTENER_CLOSE_TIMEOUT):
        for listener in list(listeners.values()):
            try:
                await listener.close()
            except Exception as exc:
                log.debug("closing a listener failed: %r", exc)


LISTEN_BACKLOG = 1024
"""Connections the kernel completes for us before we accept them. py-libp2p listens with
128: under a flood of connections the queue fills, and the kernel then drops a real dialer's
SYN (the dialer retries after 1 s, then 3 s)."""


def _deepen_accept_queues(network: INetwork) -> None:
    """Raise the TCP listeners' backlog (listen() on a listening socket only updates it)."""
    for listener in getattr(network, "listeners", {}).values():
        for socket_listener in getattr(listener, "listeners", ()):
            sock = getattr(socket_listener, "socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.listen(LISTEN_BACKLOG)


def listen_addrs_for(tcp: Sequence[Multiaddr | str], ws_port: int | None = None) -> list[Multiaddr]:
    """TCP listen addresses plus, with `ws_port`, a /ws listener on the first TCP address's IP."""
    addrs = [Multiaddr(str(a)) for a in tcp]
    if ws_port is not None:
        if not addrs:
            raise HostError("a WebSocket listener needs a TCP listen address for its IP")
        found = _ip_of(addrs[0])
        if found is None:
            raise HostError(f"{addrs[0]} has no IP address to put a WebSocket listener on")
        family, ip = found
        addrs.append(Multiaddr(f"/{family}/{ip}/tcp/{ws_port}/ws"))
    return addrs


def connection_resources(max_connections: int, max_pending: int) -> ResourceManager:
    """py-libp2p's resource manager, with its connection limits out of the way of ours.

    Its defaults allow 256 established inbound connections (fewer than our 300) and refuse
    the next one after its handshake; every connection refused there kept one of the
    manager's 1,000 connection slots for good (py-libp2p 0.8.1), so a node filled from a few
    addresses, and dialled again, refused every connection after some 1,000 refusals —
    legitimate ones too, until restarted (measured with tests/bench/attack.py). Our gate
    (inbound_gate.py) and the swarm's maximum decide instead: no per-direction or per-peer
    limits here, and room for every connection the swarm can hold plus every handshake in
    progress. Its circuit breaker and graceful degradation are off: both refuse everyone at
    once because of what some did.
    """
    room = max_connections + max_pending
    return new_resource_manager(
        limits=ResourceLimits(max_connections=room + max_pending),
        connection_limits=ConnectionLimits(),  # none
        enable_circuit_breaker=False,
        enable_graceful_degradation=False,
    )


class WakuHost:
    """A py-libp2p host configured for Waku, and the helpers the node stack needs around it."""

    def __init__(
        self,
        key_pair: KeyPair,
        listen_addrs: Sequence[Multiaddr],
        *,
        inbound_limits: InboundLimits = DEFAULT_INBOUND_LIMITS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not listen_addrs:
            raise HostError("a host needs at least one listen address")
        self.key_pair = key_pair
        self.listen_addrs = list(listen_addrs)
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        swarm_room = max_connections + inbound_limits.max_pending
        self.resources = connection_resources(max_connections, inbound_limits.max_pending)
        self.libp2p: IHost = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux, TProtocol(MPLEX_PROTOCOL_ID): Mplex},
            listen_addrs=self.listen_addrs,
            resource_manager=self.resources,
            connection_config=ConnectionConfig(
                # Room for the pending inbound connections on top: py-libp2p refuses a
                # connection before its handshake once this many are open, while the inbound
                # gate holds `max_connections` after it, making room (inbound_gate.py). At
                # its high watermark py-libp2p would prune on its own: never, then.
                max_connections=swarm_room,
                high_watermark=swarm_room,
                # Its defaults (50 and 100) must not exceed the maximum, or a node with a low
                # --max-connections fails to start (it did). Its auto-connector is stopped.
                min_connections=min(MIN_CONNECTIONS, swarm_room),
                low_watermark=min(LOW_WATERMARK, swarm_room),
                max_connections_per_peer=1,
                # py-libp2p's 10 s for Noise + muxer negotiation is too short on a slow,
                # lossy link (several round trips of a second or more each); ours is the dial's.
                inbound_upgrade_timeout=UPGRADE_TIMEOUT,
                outbound_upgrade_timeout=UPGRADE_TIMEOUT,
            ),
        )
        self.events = ConnectionEvents()
        network = self.libp2p.get_network()
        network.register_notifee(self.events)
        self.inbound = InboundGate(inbound_limits, max_connections=max_connections)
        if isinstance(network, Swarm):
            self.inbound.install(network)

    @property
    def peer_id(self) -> ID:
        return self.libp2p.get_id()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WakuHost]:
        """Listen on every address until the block exits; then close every connection.

        Raises HostError (not wrapped in an exception group) when an address cannot be bound.
        """
        try:
            async with self.libp2p.run(self.listen_addrs):
                # py-libp2p logs a failed bind and carries on; a node that cannot listen stops.
                bound = self.listen_multiaddrs()
                if len(bound) < len(self.listen_addrs):
                    wanted = ", ".join(str(a) for a in self.listen_addrs)
                    raise _BindFailed(
                        f"cannot listen on all of {wanted} (bound: {bound or 'none'})"
                    )
                # The swarm's auto-connector redials any peer left in the peerstore every 30 s,
                # including peers we dropped on purpose; who to dial is the node's decision.
                network = self.libp2p.get_network()
                if isinstance(network, Swarm):
                    await network.auto_connector.stop()
                _deepen_accept_queues(network)
                log.info("host %s listening on %s", self.peer_id, bound)
                try:
                    yield self
                finally:
                    await _close_listeners(network)
        except BaseExceptionGroup as group:
            failed, rest = group.split(_BindFailed)
            if failed is None or rest is not None:
                raise
            raise HostError(str(_first_leaf(failed))) from None
        except _BindFailed as exc:
            raise HostError(str(exc)) from None

    def listen_multiaddrs(self) -> list[Multiaddr]:
        """The bound addresses (real ports after binding port 0), without /p2p."""
        return list(self.libp2p.get_transport_addrs())

    def full_multiaddrs(self) -> list[Multiaddr]:
        """Dialable addresses with /p2p/<id>; a wildcard IP becomes one entry per local IP."""
        suffix = f"/p2p/{self.peer_id.to_base58()}"
        out: list[Multiaddr] = []
        for addr in self.listen_multiaddrs():
            for concrete in _expand_wildcard(addr):
                full = Multiaddr(str(concrete) + suffix)
                if full not in out:
                    out.append(full)
        return out

    async def dial(self, addr: Multiaddr | str) -> ID:
        """Connect to a full multiaddr (with /p2p/); returns the peer id once connected."""
        try:
            info = info_from_p2p_addr(Multiaddr(str(addr)))
        except Exception as exc:
            raise HostError(f"{addr} is not a multiaddr with /p2p/<peer id>: {exc}") from None
        try:
            await self.libp2p.connect(info)
        except Exception as exc:
            raise HostError(f"cannot connect to {addr}: {exc}") from exc
        return info.peer_id

    def is_connected(self, peer_id: ID) -> bool:
        return any(not c.is_closed for c in self.libp2p.get_network().get_connections(peer_id))

    def connected_peers(self) -> list[ID]:
        return list(self.libp2p.get_connected_peers())

    async def disconnect(self, peer_id: ID, *, forget: bool = False) -> None:
        """Close every connection to the peer; `forget` also drops its known addresses."""
        if forget:
            with contextlib.suppress(Exception):
                self.libp2p.get_peerstore().clear_addrs(peer_id)
        with contextlib.suppress(Exception):
            await self.libp2p.disconnect(peer_id)


def _ip_of(addr: Multiaddr) -> tuple[str, str] | None:
    for proto, value in addr.items():
        if proto.name in ("ip4", "ip6"):
            return proto.name, str(value)
    return None


def _expand_wildcard(addr: Multiaddr) -> list[Multiaddr]:
    text = str(addr)
    for family, wildcard in (("ip4", "0.0.0.0"), ("ip6", "::")):
        if _ip_of(addr) == (family, wildcard):
            rest = text.split(f"/{family}/{wildcard}", 1)[1]
            return [Multiaddr(f"/{family}/{ip}{rest}") for ip in _local_ips(family)]
    return [addr]


def _local_ips(family: str) -> list[str]:
    """Loopback plus the addresses this machine's hostname and default route resolve to."""
    ips = ["127.0.0.1"] if family == "ip4" else ["::1"]
    af = socket.AF_INET if family == "ip4" else socket.AF_INET6
    probe = "192.0.2.1" if family == "ip4" else "2001:db8::1"
    with contextlib.suppress(OSError), socket.socket(af, socket.SOCK_DGRAM) as sock:
        sock.connect((probe, 9))  # UDP connect sends nothing; it only picks a route.
        ips.append(sock.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, af):
            ips.append(str(info[4][0]))
    seen: list[str] = []
    for ip in ips:
        with contextlib.suppress(ValueError):
            parsed = ipaddress.ip_address(ip.split("%")[0])
            if not parsed.is_unspecified and str(parsed) not in seen:
                seen.append(str(parsed))
    return seen
