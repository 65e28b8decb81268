"""mDNS peer discovery on the wire: the libp2p mDNS names and strings, and just enough of the
DNS message format (RFC 1035) to carry them: questions and PTR/TXT records, names with
compression pointers on the way in, none on the way out.

The libp2p mDNS spec: a query asks for PTR records of `_p2p._udp.local`; a peer answers with
a PTR to `<random name>._p2p._udp.local` and a TXT record on that name holding one
`dnsaddr=<multiaddr>/p2p/<peer id>` string per address. chinwag adds one more TXT string,
`waku-cluster=<id>` (other libp2p peers ignore strings they do not know).

Pure code over bytes. Everything read is bounded: packet size, record counts, label and name
lengths, pointer jumps; a malformed packet raises `DnsError` and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

TYPE_A = 1
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
CLASS_IN = 1
CLASS_MASK = 0x7FFF
"""mDNS uses the top bit of the class as cache-flush (records) or unicast-response (questions)."""
FLAG_RESPONSE = 0x8000
FLAG_AUTHORITATIVE = 0x0400

SERVICE_NAME = "_p2p._udp.local"
MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
TYPE_ANY = 255
CLUSTER_TXT = b"waku-cluster="
DNSADDR_TXT = b"dnsaddr="

MAX_PACKET = 9000
"""RFC 6762 §17: an mDNS message is at most 9000 bytes."""
MAX_RECORDS = 64
MAX_NAME = 255
MAX_LABEL = 63
MAX_JUMPS = 32

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_Q_FIXED = struct.Struct("!HH")


class DnsError(ValueError):
    """A packet that is not a DNS message we can read."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    rdata: bytes
    rclass: int = CLASS_IN
    target: str | None = None
    """For PTR records: the name pointed to (decoded, since it may use compression)."""

    def txt_strings(self) -> list[bytes]:
        if self.rtype != TYPE_TXT:
            raise DnsError("not a TXT record")
        out: list[bytes] = []
        i = 0
        while i < len(self.rdata):
            n = self.rdata[i]
            if i + 1 + n > len(self.rdata):
                raise DnsError("TXT string runs past its record")
            out.append(self.rdata[i + 1 : i + 1 + n])
            i += 1 + n
        return out


@dataclass(frozen=True)
class Message:
    flags: int
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    additionals: tuple[Record, ...] = ()
    ident: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    def records(self) -> tuple[Record, ...]:
        return self.answers + self.additionals


# --- encoding -------------------------------------------------------------------------------


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("utf-8")
        if not raw or len(raw) > MAX_LABEL:
            raise DnsError(f"bad label {label!r} in {name!r}")
        out += bytes([len(raw)]) + raw
    out += b"\x00"
    if len(out) > MAX_NAME:
        raise DnsError(f"name {name!r} is too long")
    return bytes(out)


def ptr_record(name: str, target: str, ttl: int) -> Record:
    return Record(name, TYPE_PTR, ttl, encode_name(target), target=target.rstrip("."))


def txt_record(
    name: str, strings: Sequence[bytes], ttl: int, *, cache_flush: bool = True
) -> Record:
    rdata = bytearray()
    for s in strings:
        if len(s) > 255:
            raise DnsError("a TXT string is at most 255 bytes")
        rdata += bytes([len(s)]) + s
    rclass = CLASS_IN | (0x8000 if cache_flush else 0)
    return Record(name, TYPE_TXT, ttl, bytes(rdata) or b"\x00", rclass=rclass)


def encode_message(message: Message) -> bytes:
    parts = [
        _HEADER.pack(
            message.ident,
            message.flags,
            len(message.questions),
            len(message.answers),
            0,
            len(message.additionals),
        )
    ]
    for q in message.questions:
        parts.append(encode_name(q.name) + _Q_FIXED.pack(q.qtype, q.qclass))
    for r in message.records():
        parts.append(encode_name(r.name) + _RR_FIXED.pack(r.rtype, r.rclass, r.ttl, len(r.rdata)))
        parts.append(r.rdata)
    packet = b"".join(parts)
    if len(packet) > MAX_PACKET:
        raise DnsError(f"message of {len(packet)} bytes is over {MAX_PACKET}")
    return packet


# --- decoding -------------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    if len(data) > MAX_PACKET:
        raise DnsError(f"packet of {len(data)} bytes is over {MAX_PACKET}")
    if len(data) < _HEADER.size:
        raise DnsError("packet shorter than a DNS header")
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if qd + an + ns + ar > MAX_RECORDS:
        raise DnsError("too many records in one packet")
    pos = _HEADER.size
    questions = []
    for _ in range(qd):
        name, pos = _read_name(data, pos)
        if pos + _Q_FIXED.size > len(data):
            raise DnsError("question runs past the packet")
        qtype, qclass = _Q_FIXED.unpack_from(data, pos)
        pos += _Q_FIXED.size
        questions.append(Question(name, qtype, qclass))
    sections: list[list[Record]] = [[], [], []]
    for index, count in enumerate((an, ns, ar)):
        for _ in range(count):
            record, pos = _read_record(data, pos)
            sections[index].append(record)
    return Message(
        flags=flags,
        questions=tuple(questions),
        answers=tuple(sections[0]),
        additionals=tuple(sections[2]),
        ident=ident,
    )


def _read_record(data: bytes, pos: int) -> tuple[Record, int]:
    name, pos = _read_name(data, pos)
    if pos + _RR_FIXED.size > len(data):
        raise DnsError("record runs past the packet")
    rtype, rclass, ttl, length = _RR_FIXED.unpack_from(data, pos)
    pos += _RR_FIXED.size
    if pos + length > len(data):
        raise DnsError("record data runs past the packet")
    rdata = data[pos : pos + length]
    target = _read_name(data, pos)[0] if rtype == TYPE_PTR else None
    return Record(name, rtype, ttl, rdata, rclass, target), pos + length


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """A possibly compressed name at `pos`; returns it and the position after it."""
    labels: list[str] = []
    total = 0
    jumps = 0
    end: int | None = None
    while True:
        if pos >= len(data):
            raise DnsError("name runs past the packet")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise DnsError("truncated compression pointer")
            jumps += 1
            if jumps > MAX_JUMPS:
                raise DnsError("too many compression pointers (a loop?)")
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length & 0xC0:
            raise DnsError("unknown label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(data):
            raise DnsError("label runs past the packet")
        total += length + 1
        if total > MAX_NAME:
            raise DnsError("name is too long")
        labels.append(data[pos : pos + length].decode("utf-8", errors="replace"))
        pos += length
    return ".".join(labels), end if end is not None else pos
