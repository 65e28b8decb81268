"""LAN discovery with multicast DNS, the libp2p way, limited to our cluster.

Wire (the libp2p mDNS spec): a query asks for PTR records of `_p2p._udp.local`; a peer
answers with a PTR to `<random name>._p2p._udp.local` and a TXT record on that name holding
one `dnsaddr=<multiaddr>/p2p/<peer id>` string per address. chinwag adds one more TXT string,
`waku-cluster=<id>`, and keeps only peers that carry its own cluster (other libp2p peers
ignore strings they do not know; peers without the tag are dropped unless
`accept_untagged`). Metadata still checks every connection, whatever discovery said.

Why not py-libp2p 0.8.1's `libp2p.discovery.mdns` (see docs/architecture.md): it runs
zeroconf on its own threads and reports through a process-wide singleton from those threads
(no trio, no per-node handler), binds every interface with no way to choose (tests would
multicast on the machine's real network), advertises the listen address as given (a wildcard
0.0.0.0 that no LAN peer can dial), and has no cluster filter.

`MdnsCore` is sans-IO (bytes in, bytes and discoveries out, injected time and randomness);
`MdnsService` is the node service moving its bytes over an IPv4 multicast UDP socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import socket
import string
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio
from multiaddr import Multiaddr

from chat.waku.discovery.dns import (
    CLASS_IN,
    CLASS_MASK,
    FLAG_AUTHORITATIVE,
    FLAG_RESPONSE,
    TYPE_PTR,
    TYPE_TXT,
    DnsError,
    Message,
    Question,
    Record,
    decode_message,
    encode_message,
    ptr_record,
    txt_record,
)
from chat.waku.host import TaskStatusLike, WakuHost

log = logging.getLogger(__name__)

SERVICE_NAME = "_p2p._udp.local"
MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
TYPE_ANY = 255
CLUSTER_TXT = b"waku-cluster="
DNSADDR_TXT = b"dnsaddr="
DEFAULT_TTL = 120
QUERY_INTERVAL = 10.0
"""js-libp2p's mDNS default; a peer joining the LAN is found within this, usually at once
(it announces itself when it starts)."""
STARTUP_QUERIES = (0.0, 1.0, 3.0)
"""Seconds after start for the first queries (RFC 6762 §5.2: a short burst, then slower)."""
MIN_RESPONSE_INTERVAL = 0.25
MAX_ADDRS_PER_PEER = 16
MAX_RECEIVE = 9000


@dataclass(frozen=True)
class Discovered:
    peer_id: str
    addrs: tuple[str, ...]
    """Multiaddrs without the /p2p/ part."""
    cluster_id: int | None


def _random_name(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(32))


class MdnsCore:
    def __init__(
        self,
        peer_id: str,
        cluster_id: int,
        rng: random.Random,
        *,
        ttl: int = DEFAULT_TTL,
        query_interval: float = QUERY_INTERVAL,
        accept_untagged: bool = False,
    ) -> None:
        self.peer_id = peer_id
        self.cluster_id = cluster_id
        self.ttl = ttl
        self.query_interval = query_interval
        self.accept_untagged = accept_untagged
        self.instance = f"{_random_name(rng)}.{SERVICE_NAME}"
        self._started_at: float | None = None
        self._startup = list(STARTUP_QUERIES)
        self._next_query: float | None = None
        self._last_response = float("-inf")
        self.queries_answered = 0
        self.malformed = 0
        self.other_cluster = 0

    # --- outgoing ---------------------------------------------------------------------------

    def query(self) -> bytes:
        return encode_message(Message(flags=0, questions=(Question(SERVICE_NAME, TYPE_PTR),)))

    def response(self, addrs: Sequence[str]) -> bytes | None:
        """Our announcement for these full multiaddrs (with /p2p/); None with no address."""
        suffix = f"/p2p/{self.peer_id}"
        strings = [CLUSTER_TXT + str(self.cluster_id).encode()]
        for addr in list(addrs)[:MAX_ADDRS_PER_PEER]:
            full = addr if addr.endswith(suffix) else addr + suffix
            strings.append(DNSADDR_TXT + full.encode())
        if len(strings) == 1:
            return None
        return encode_message(
            Message(
                flags=FLAG_RESPONSE | FLAG_AUTHORITATIVE,
                answers=(ptr_record(SERVICE_NAME, self.instance, self.ttl),),
                additionals=(txt_record(self.instance, strings, self.ttl),),
            )
        )

    def queries_due(self, now: float) -> bool:
        """Whether a query should go out now (a startup burst, then every interval)."""
        if self._started_at is None:
            self._started_at = now
        if self._startup and now - self._started_at >= self._startup[0]:
            self._startup.pop(0)
            if not self._startup:
                self._next_query = now + self.query_interval
            return True
        if self._next_query is not None and now >= self._next_query:
            self._next_query = now + self.query_interval
            return True
        return False

    def next_wakeup(self, now: float) -> float:
        if self._started_at is None:
            return now
        if self._startup:
            return self._started_at + self._startup[0]
        return self._next_query if self._next_query is not None else now + self.query_interval

    # --- incoming ---------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> tuple[bool, list[Discovered]]:
        """Handle a packet: (whether to answer with our response, peers it announces)."""
        try:
            message = decode_message(data)
        except DnsError:
            self.malformed += 1
            return False, []
        if not message.is_response:
            asked = any(
                q.name.lower() == SERVICE_NAME and q.qtype in (TYPE_PTR, TYPE_ANY)
                for q in message.questions
            )
            if asked and now - self._last_response >= MIN_RESPONSE_INTERVAL:
                self._last_response = now
                self.queries_answered += 1
                return True, []
            return False, []
        return False, self._peers_in(message)

    def _peers_in(self, message: Message) -> list[Discovered]:
        records = message.records()
        instances = [
            r.target
            for r in records
            if r.rtype == TYPE_PTR and r.name.lower() == SERVICE_NAME and r.target
        ]
        found: list[Discovered] = []
        for instance in instances:
            txts = [
                r
                for r in records
                if r.rtype == TYPE_TXT and r.rclass & CLASS_MASK == CLASS_IN and r.name == instance
            ]
            peer = self._peer_from(txts)
            if peer is not None:
                found.append(peer)
        return found

    def _peer_from(self, txts: list[Record]) -> Discovered | None:
        peer_id: str | None = None
        cluster: int | None = None
        addrs: list[str] = []
        for record in txts:
            try:
                strings = record.txt_strings()
            except DnsError:
                self.malformed += 1
                return None
            for s in strings:
                if s.startswith(CLUSTER_TXT):
                    value = s[len(CLUSTER_TXT) :]
                    cluster = int(value) if value.isdigit() and len(value) <= 5 else None
                elif s.startswith(DNSADDR_TXT) and len(addrs) < MAX_ADDRS_PER_PEER:
                    parsed = _split_dnsaddr(s[len(DNSADDR_TXT) :])
                    if parsed is None:
                        continue
                    addr, pid = parsed
                    if peer_id is None:
                        peer_id = pid
                    if pid == peer_id and addr not in addrs:
                        addrs.append(addr)
        if peer_id is None or peer_id == self.peer_id or not addrs:
            return None
        if cluster != self.cluster_id and not (cluster is None and self.accept_untagged):
            self.other_cluster += 1
            return None
        return Discovered(peer_id, tuple(addrs), cluster)


def _split_dnsaddr(raw: bytes) -> tuple[str, str] | None:
    try:
        full = Multiaddr(raw.decode("ascii"))
        peer_id = str(full.value_for_protocol("p2p"))
        addr = full.decapsulate(Multiaddr(f"/p2p/{peer_id}"))
    except Exception:
        return None
    text = str(addr)
    return (text, peer_id) if text else None


def _is_loopback_addr(addr: str) -> bool:
    try:
        ip = str(Multiaddr(addr).value_for_protocol("ip4"))
    except Exception:
        try:
            ip = str(Multiaddr(addr).value_for_protocol("ip6"))
        except Exception:
            return False
    return ipaddress.ip_address(ip).is_loopback


def default_interfaces() -> tuple[str, ...]:
    """Loopback (instances on this machine) and the default route's IPv4 address (the LAN)."""
    found = ["127.0.0.1"]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # picks a route; sends nothing
        ip = str(s.getsockname()[0])
        if ip not in found:
            found.append(ip)
    return tuple(found)


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
                        await self._send(sock, interfaces, lambda _: core.query())
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
            return core.response([a for a in addrs if not _is_loopback_addr(a)])

        await self._send(sock, interfaces, packet_for)

    async def _send(
        self,
        sock: trio.socket.SocketType,
        interfaces: Sequence[str],
        packet_for: Callable[[str], bytes | None],
    ) -> None:
        for ip in interfaces:
            packet = packet_for(ip)
            if packet is None:
                continue
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
                await sock.sendto(packet, (self.group, self.port))
                self.packets_sent += 1
            except OSError as exc:
                log.debug("mDNS: send on %s failed: %s", ip, exc)
