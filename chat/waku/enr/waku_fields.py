"""The Waku keys of a node record (WAKU2-ENR), and the record a node hands out for itself.

- `multiaddrs`: entries of (2-byte big-endian length ‖ binary multiaddr), for addresses the
  `ip`/`tcp` keys cannot say (WebSocket, DNS, circuit relay); no /p2p, except a circuit
  address's relay, whose `/p2p-circuit` suffix is left out and put back here.
- `waku2`: one byte of capability bits (Capability).
- `rs`: cluster (uint16 BE) ‖ count (uint8) ‖ count × shard (uint16 BE); `rsv`: cluster ‖ a
  128-byte bit vector, shard n at bit (n mod 8), least significant first, of byte (n div 8),
  as nwaku and go-waku write it. With both present `rs` wins.

`WakuPeer.decode` is what peer exchange uses: a verified record with its Waku fields read,
its libp2p peer id, and the addresses to dial it on.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from libp2p.crypto.secp256k1 import Secp256k1PublicKey
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.enr.record import Enr, EnrError

MULTIADDR_LENGTH_BYTES = 2
RS_LIMIT = 64
"""From this many shards on, `rsv` is smaller than `rs`."""
RSV_VECTOR_BYTES = 128
MAX_SHARD = RSV_VECTOR_BYTES * 8 - 1
MAX_CLUSTER = 0xFFFF
DIAL_TRANSPORTS = ("tcp",)
"""Address families we (and js-waku) can dial: plain TCP, WebSocket over TCP."""


class Capability(enum.IntFlag):
    RELAY = 1
    STORE = 2
    FILTER = 4
    LIGHTPUSH = 8
    SYNC = 16
    MIX = 32


@dataclass(frozen=True, slots=True)
class RelayShards:
    cluster_id: int
    shards: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.cluster_id <= MAX_CLUSTER:
            raise EnrError(f"cluster {self.cluster_id} is not a uint16")
        if any(not 0 <= s <= MAX_SHARD for s in self.shards):
            raise EnrError(f"shards must be within 0..{MAX_SHARD}")


def encode_multiaddrs(addrs: Iterable[Multiaddr]) -> bytes:
    out = bytearray()
    for addr in addrs:
        data = addr.to_bytes()
        out += len(data).to_bytes(MULTIADDR_LENGTH_BYTES, "big") + data
    return bytes(out)


def decode_multiaddrs(data: bytes) -> tuple[Multiaddr, ...]:
    addrs: list[Multiaddr] = []
    offset = 0
    while offset < len(data):
        if offset + MULTIADDR_LENGTH_BYTES > len(data):
            raise EnrError("`multiaddrs` ends inside a length")
        size = int.from_bytes(data[offset : offset + MULTIADDR_LENGTH_BYTES], "big")
        offset += MULTIADDR_LENGTH_BYTES
        if size == 0 or offset + size > len(data):
            raise EnrError("`multiaddrs` has an entry that runs past its end")
        entry = data[offset : offset + size]
        try:
            # py-multiaddr reads bytes lazily: parse the text back to check them now.
            addr = Multiaddr(str(Multiaddr(entry)))
            valid = addr.to_bytes() == entry
        except Exception:  # py-multiaddr raises several types for bad bytes
            valid = False
        if not valid:
            raise EnrError("`multiaddrs` holds bytes that are not a multiaddr")
        addrs.append(addr)
        offset += size
    return tuple(addrs)


def encode_shards(shards: RelayShards) -> tuple[str, bytes]:
    """(`rs` or `rsv`, value): the index list below 64 shards, else the bit vector."""
    ordered = sorted(set(shards.shards))
    cluster = shards.cluster_id.to_bytes(2, "big")
    if len(ordered) < RS_LIMIT:
        return "rs", cluster + bytes([len(ordered)]) + b"".join(
            s.to_bytes(2, "big") for s in ordered
        )
    vector = bytearray(RSV_VECTOR_BYTES)
    for shard in ordered:
        vector[shard // 8] |= 1 << (shard % 8)
    return "rsv", cluster + bytes(vector)


def decode_rs(data: bytes) -> RelayShards:
    if len(data) < 3 or len(data) != 3 + 2 * data[2]:
        raise EnrError("`rs` is not a cluster, a count and that many shards")
    shards = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(3, len(data), 2))
    return RelayShards(int.from_bytes(data[:2], "big"), tuple(sorted(set(shards))))


def decode_rsv(data: bytes) -> RelayShards:
    if len(data) != 2 + RSV_VECTOR_BYTES:
        raise EnrError(f"`rsv` is {len(data)} bytes, not {2 + RSV_VECTOR_BYTES}")
    vector = data[2:]
    shards = tuple(n for n in range(RSV_VECTOR_BYTES * 8) if vector[n // 8] >> (n % 8) & 1)
    return RelayShards(int.from_bytes(data[:2], "big"), shards)


def peer_id_of(public_key: bytes) -> ID:
    """The libp2p peer id of a compressed secp256k1 key ("16Uiu2HAm...")."""
    try:
        return ID.from_pubkey(Secp256k1PublicKey.from_bytes(public_key))
    except Exception:
        raise EnrError("`secp256k1` is not a point on the curve") from None


def _dialable(addr: Multiaddr) -> bool:
    names = [p.name for p in addr.protocols()]
    has_host = any(n in ("ip4", "ip6", "dns", "dns4", "dns6") for n in names)
    return has_host and any(n in DIAL_TRANSPORTS for n in names)


@dataclass(frozen=True)
class WakuPeer:
    """A verified record read as a Waku peer."""

    enr: Enr
    peer_id: ID
    capabilities: Capability | None
    shards: RelayShards | None
    multiaddrs: tuple[Multiaddr, ...]

    @classmethod
    def decode(cls, data: bytes) -> WakuPeer:
        return cls.from_enr(Enr.decode(data))

    @classmethod
    def from_text(cls, text: str) -> WakuPeer:
        return cls.from_enr(Enr.from_text(text))

    @classmethod
    def from_enr(cls, enr: Enr) -> WakuPeer:
        waku2 = enr.value("waku2")
        if waku2 is not None and len(waku2) > 1:
            raise EnrError(f"`waku2` is {len(waku2)} bytes, not 1")
        rs, rsv = enr.value("rs"), enr.value("rsv")
        shards = decode_rs(rs) if rs is not None else decode_rsv(rsv) if rsv is not None else None
        addrs = enr.value("multiaddrs")
        return cls(
            enr=enr,
            peer_id=peer_id_of(enr.public_key),
            capabilities=None if waku2 is None else Capability(int.from_bytes(waku2, "big")),
            shards=shards,
            multiaddrs=() if addrs is None else decode_multiaddrs(addrs),
        )

    @property
    def dial_addrs(self) -> list[Multiaddr]:
        """Full multiaddrs (with /p2p/) over a transport we can dial, `ip`/`tcp` first."""
        suffix = f"/p2p/{self.peer_id.to_base58()}"
        found: list[Multiaddr] = []
        enr = self.enr
        if enr.ip is not None and enr.tcp is not None:
            found.append(Multiaddr(f"/ip4/{enr.ip}/tcp/{enr.tcp}"))
        if enr.ip6 is not None and enr.tcp6 is not None:
            found.append(Multiaddr(f"/ip6/{enr.ip6}/tcp/{enr.tcp6}"))
        for addr in self.multiaddrs:
            if not _dialable(addr):
                continue
            relayed = any(p.name == "p2p" for p in addr.protocols())
            found.append(Multiaddr(str(addr) + "/p2p-circuit") if relayed else addr)
        return [Multiaddr(str(a) + suffix) for a in found]

    def serves(self, capability: Capability) -> bool:
        return self.capabilities is not None and capability in self.capabilities


def announced_addrs(listen: Sequence[Multiaddr]) -> tuple[Multiaddr | None, list[Multiaddr]]:
    """From a host's bound addresses (concrete IPs, no /p2p): the plain TCP one the `ip`/
    `tcp` keys carry, and the others (WebSocket) for `multiaddrs`. A routable IPv4 address
    is preferred to loopback, since the record is for others."""

    def rank(addr: Multiaddr) -> int:
        ip = _ip4_of(addr)
        return 2 if ip is None else 1 if ipaddress.ip_address(ip).is_loopback else 0

    plain = [a for a in listen if _ip4_of(a) and [p.name for p in a.protocols()][-1] == "tcp"]
    primary = min(plain, key=rank) if plain else None
    chosen_ip = _ip4_of(primary) if primary is not None else None
    others = [
        a
        for a in listen
        if a != primary and _dialable(a) and (chosen_ip is None or _ip4_of(a) in (chosen_ip, None))
    ]
    return primary, others


def _ip4_of(addr: Multiaddr) -> str | None:
    for proto, value in addr.items():
        if proto.name == "ip4":
            return str(value)
    return None


def node_enr(
    secret: bytes,
    seq: int,
    listen: Sequence[Multiaddr],
    capabilities: Capability,
    shards: RelayShards | None,
) -> Enr:
    """The record a node hands out: its TCP address in `ip`/`tcp`, its other addresses
    (WebSocket) in `multiaddrs` while they fit in 300 bytes, its capabilities and shards."""
    primary, others = announced_addrs(listen)
    values: dict[str, bytes] = {"waku2": bytes([int(capabilities) & 0xFF])}
    if primary is not None:
        ip = _ip4_of(primary)
        assert ip is not None
        values["ip"] = ipaddress.IPv4Address(ip).packed
        port = int(primary.value_for_protocol("tcp"))
        values["tcp"] = port.to_bytes((port.bit_length() + 7) // 8, "big")
    if shards is not None:
        key, value = encode_shards(shards)
        values[key] = value
    while True:
        if others:
            values["multiaddrs"] = encode_multiaddrs(others)
        else:
            values.pop("multiaddrs", None)
        try:
            return Enr.sign(secret, seq, values)
        except EnrError:
            if not others:
                raise
            others = others[:-1]  # the record is full: leave the last address out
