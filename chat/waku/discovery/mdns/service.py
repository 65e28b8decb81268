"""mDNS discovery as a node service: the core's packets over an IPv4 multicast UDP socket.

Why not py-libp2p 0.8.1's `libp2p.discovery.mdns` (see docs/architecture.md): it runs
zeroconf on its own threads and reports through a process-wide singleton from those threads
(no trio, no per-node handler), binds every interface with no way to choose (tests would
multicast on the machine's real network), advertises the listen address as given (a wildcard
0.0.0.0 that no LAN peer can dial), and has no cluster filter.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
from collections.abc import Callable, Sequence

import trio

from chat.waku.bandwidth import IN, OUT, BandwidthMeter, named_slot, wire_slot
from chat.waku.discovery.mdns.core import (
    QUERY_INTERVAL,
    Discovered,
    MdnsCore,
    is_loopback_address,
)
from chat.waku.discovery.mdns.wire import MDNS_GROUP, MDNS_PORT
from chat.waku.host import TaskStatusLike, WakuHost

log = logging.getLogger(__name__)

MAX_RECEIVE = 9000


def default_interfaces() -> tuple[str, ...]:
    """Loopback (instances on this machine) and the default route's IPv4 address (the LAN)."""
    found = ["127.0.0.1"]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # picks a route; sends nothing
        ip = str(s.getsockname()[0])
        if ip not in found:
            found.append(ip)
    return tuple(found)


_DISCOVERY_IN = named_slot("discovery", IN)
_DISCOVERY_OUT = named_slot("discovery", OUT)
_WIRE_IN, _WIRE_OUT = wire_slot(IN), wire_slot(OUT)
"""mDNS packets count as discovery in the bandwidth meter, and on the wire (its UDP payload:
the wire minus the protocols stays the connections' framing)."""


class MdnsService:
    """Announces this node and reports peers of our cluster found on the LAN."""

    name = "mdns"

    def __init__(
        self,
        cluster_id: int,
        on_discovered: Callable[[Discovered], None],
        *,
        interfaces: Sequence[str] | None = None,
        port: int = MDNS_PORT,
        group: str = MDNS_GROUP,
        query_interval: float = QUERY_INTERVAL,
        accept_untagged: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.on_discovered = on_discovered
        self.interfaces = tuple(interfaces) if interfaces is not None else None
        self.port = port
        self.group = group
        self.query_interval = query_interval
        self.accept_untagged = accept_untagged
        self._rng = rng or random.Random()
        self.core: MdnsCore | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self.discovered = 0

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        interfaces = self.interfaces or default_interfaces()
        core = self.core = MdnsCore(
            str(host.peer_id),
            self.cluster_id,
            self._rng,
            query_interval=self.query_interval,
            accept_untagged=self.accept_untagged,
        )
        try:
            sock = await self._open_socket(interfaces)
        except OSError as exc:
            # Another responder holding 5353 exclusively, or no multicast: chat still works
            # with a fleet or --peer, so this is a warning, not a failure.
            log.warning("mDNS LAN discovery is off: %s", exc)
            task_status.started()
            await trio.sleep_forever()
        with sock:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_loop, sock, host, interfaces, core)
                task_status.started()
                await self._send_response(sock, host, interfaces, core)
                while True:
                    now = trio.current_time()
                    if core.queries_due(now):
                        await self._send(sock, interfaces, lambda _: core.query(), host.bandwidth)
                    await trio.sleep_until(core.next_wakeup(trio.current_time()))

    async def _open_socket(self, interfaces: Sequence[str]) -> trio.socket.SocketType:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            await sock.bind(("", self.port))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            joined = 0
            for ip in interfaces:
                membership = struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(ip))
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
                    joined += 1
                except OSError as exc:
                    log.info("mDNS: cannot join %s on %s: %s", self.group, ip, exc)
            if not joined:
                raise OSError("mDNS could not join the multicast group on any interface")
        except BaseException:
            sock.close()
            raise
        return sock

    async def _receive_loop(
        self,
        sock: trio.socket.SocketType,
        host: WakuHost,
        interfaces: Sequence[str],
        core: MdnsCore,
    ) -> None:
        while True:
            data, _source = await sock.recvfrom(MAX_RECEIVE)
            self.packets_received += 1
            host.bandwidth.count(_DISCOVERY_IN, len(data))
            host.bandwidth.count(_WIRE_IN, len(data))
            answer, peers = core.receive(data, trio.current_time())
            if answer:
                await self._send_response(sock, host, interfaces, core)
            for peer in peers:
                self.discovered += 1
                log.debug("mDNS: found %s at %s", peer.peer_id, list(peer.addrs))
                self.on_discovered(peer)

    async def _send_response(
        self,
        sock: trio.socket.SocketType,
        host: WakuHost,
        interfaces: Sequence[str],
        core: MdnsCore,
    ) -> None:
        addrs = [str(a) for a in host.full_multiaddrs() if "/ws" not in str(a)]

        def packet_for(interface: str) -> bytes | None:
            # Loopback addresses mean nothing to another machine: only say them on loopback.
            if interface.startswith("127."):
                return core.response(addrs)
            return core.response([a for a in addrs if not is_loopback_address(a)])

        await self._send(sock, interfaces, packet_for, host.bandwidth)

    async def _send(
        self,
        sock: trio.socket.SocketType,
        interfaces: Sequence[str],
        packet_for: Callable[[str], bytes | None],
        meter: BandwidthMeter,
    ) -> None:
        for ip in interfaces:
            packet = packet_for(ip)
            if packet is None:
                continue
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
                await sock.sendto(packet, (self.group, self.port))
                self.packets_sent += 1
                meter.count(_DISCOVERY_OUT, len(packet))
                meter.count(_WIRE_OUT, len(packet))
            except OSError as exc:
                log.debug("mDNS: send on %s failed: %s", ip, exc)
