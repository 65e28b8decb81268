"""mDNS discovery, sans-IO: our announcement and queries out, packets in, peers of our cluster
found (bytes in, bytes and discoveries out; time and randomness injected).

Only peers whose announcement carries our cluster are kept (peers without the tag are dropped
unless `accept_untagged`). Metadata still checks every connection, whatever discovery said.
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from multiaddr import Multiaddr

from chat.waku.discovery.mdns.wire import (
    CLASS_IN,
    CLASS_MASK,
    CLUSTER_TXT,
    DNSADDR_TXT,
    FLAG_AUTHORITATIVE,
    FLAG_RESPONSE,
    SERVICE_NAME,
    TYPE_ANY,
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

DEFAULT_TTL = 120
QUERY_INTERVAL = 10.0
"""js-libp2p's mDNS default; a peer joining the LAN is found within this, usually at once
(it announces itself when it starts)."""
STARTUP_QUERIES = (0.0, 1.0, 3.0)
"""Seconds after start for the first queries (RFC 6762 §5.2: a short burst, then slower)."""
MIN_RESPONSE_INTERVAL = 0.25
MAX_ADDRS_PER_PEER = 16


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


def is_loopback_address(addr: str) -> bool:
    try:
        ip = str(Multiaddr(addr).value_for_protocol("ip4"))
    except Exception:
        try:
            ip = str(Multiaddr(addr).value_for_protocol("ip6"))
        except Exception:
            return False
    return ipaddress.ip_address(ip).is_loopback
