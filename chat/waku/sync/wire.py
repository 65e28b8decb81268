"""Waku Sync on the wire: reconciliation payloads and transfer messages, and their codecs,
byte for byte as nwaku (waku/waku_store_sync/codec.nim) writes and reads them.

Reconciliation (`/vac/waku/reconciliation/1.0.0`): a payload is the sender's pubsub topics and
content topics (each list a varint count, then per topic a varint length and its UTF-8 bytes;
an empty list means all), the first range's lower bound timestamp, then its ranges over SyncIDs
(timestamp ns, 32-byte message hash), all as LEB128 varints (minimal) and raw bytes:

    pubsub_count (len topic)*  content_count (len topic)*  start  range*

A payload without ranges is the one byte 0 (nwaku may also send an empty frame; both read as
no ranges). A range carries only its upper bound; its lower bound is the previous range's upper
bound, and the first one is (start, zero hash). A bound is written as the timestamp's difference
from the previous bound; when that difference is 0, one byte N and the first N bytes of the
hash follow (the rest is zero; N covers the hash's last non-zero byte, which is nwaku's
prefix whenever nwaku's is exact), else the hash is all zero. Then one byte of range type:
0 skip, 1 fingerprint (32 bytes follow: the XOR of the hashes in the range), 2 item set (a
varint count, then per item the timestamp's difference from the previous item's, the first
one's from 0, and the full hash, then one byte `reconciled`, 0 or 1).

Transfer (`/vac/waku/transfer/1.0.0`): a stream of length-prefixed
`WakuMessageAndTopic { string pubsub_topic = 1; WakuMessage message = 2; }` (nwaku's field
numbers, which are the reverse of the WAKU-SYNC text's; see docs/protocol.md).
Every decoder raises SyncWireError, and only that, on bad bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chat.waku.framing import encode_uvarint
from chat.waku.message import MessageError, WakuMessage

RECONCILIATION_PROTOCOL = "/vac/waku/reconciliation/1.0.0"
TRANSFER_PROTOCOL = "/vac/waku/transfer/1.0.0"
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
MAX_TIMESTAMP = 2**63 - 1
"""Timestamps are int64 nanoseconds; a bound or item beyond that is malformed."""
MAX_TOPICS = 1024
"""Topics one list of a payload may name."""
MAX_RANGES = 2048
"""Ranges one payload may hold (a split answers one range with `partitions` ranges)."""
MAX_ITEMS = 8192
"""SyncIDs one payload may hold across its item sets (40 bytes each: about 330 KB)."""
MAX_PAYLOAD_SIZE = 512 * 1024
"""Bytes of one reconciliation payload; the frame reader refuses more before reading it."""
MAX_TRANSFER_SIZE = 256 * 1024
"""Bytes of one transfer message: a WakuMessage of at most 150 KiB and its topic."""
MAX_TOPIC_LENGTH = 256
MAX_VARINT_BYTES = 10

SyncId = tuple[int, bytes]
"""(timestamp ns, message hash): ordered by timestamp, then hash."""
EMPTY_PAYLOAD = b"\x00"
"""A payload without ranges (nwaku writes no topics then)."""


class SyncWireError(ValueError):
    """Bytes that are not a well-formed sync payload or transfer message."""


class RangeKind(IntEnum):
    SKIP = 0
    FINGERPRINT = 1
    ITEM_SET = 2


@dataclass(frozen=True, slots=True)
class SyncRange:
    """One range: up to `upper` (exclusive) from the previous range's upper bound."""

    upper: SyncId
    kind: RangeKind
    fingerprint: bytes = b""
    items: tuple[SyncId, ...] = ()
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class SyncPayload:
    pubsub_topics: tuple[str, ...] = ()
    """The sender's pubsub topics (none: all of them); nwaku sends its shards' topics."""
    content_topics: tuple[str, ...] = ()
    """The sender's content topics (none: all of them)."""
    start: int = 0
    """The first range's lower bound timestamp (its hash is zero)."""
    ranges: tuple[SyncRange, ...] = ()

    @property
    def lowest(self) -> SyncId:
        return (self.start, ZERO_HASH)

    @property
    def item_count(self) -> int:
        return sum(len(r.items) for r in self.ranges)


def _significant(digest: bytes) -> int:
    """Bytes up to the last non-zero one: the rest is implied."""
    return len(digest.rstrip(b"\0"))


def encode_payload(payload: SyncPayload) -> bytes:
    """Raises ValueError for a payload the format cannot express (bounds not increasing, a
    hash after a timestamp change, a bad fingerprint or hash size)."""
    if not payload.ranges:
        return EMPTY_PAYLOAD  # (nwaku leaves the topics out too)
    out = bytearray()
    for topics in (payload.pubsub_topics, payload.content_topics):
        out += encode_uvarint(len(topics))
        for topic in topics:
            encoded = topic.encode()
            out += encode_uvarint(len(encoded))
            out += encoded
    out += encode_uvarint(payload.start)
    previous = payload.lowest
    for sync_range in payload.ranges:
        timestamp, digest = sync_range.upper
        if sync_range.upper <= previous:
            raise ValueError(f"range bound {timestamp} does not increase")
        difference = timestamp - previous[0]
        out += encode_uvarint(difference)
        if difference == 0:
            # nwaku writes the bytes up to the first one that differs from the zero hash of
            # the first lower bound; up to the last non-zero byte is the same when that is
            # exact, and exact when it is not.
            length = _significant(digest)
            out.append(length)
            out += digest[:length]
        elif digest != ZERO_HASH:
            raise ValueError("a bound with a new timestamp cannot carry a hash")
        out.append(sync_range.kind)
        if sync_range.kind is RangeKind.FINGERPRINT:
            if len(sync_range.fingerprint) != HASH_SIZE:
                raise ValueError("a fingerprint is 32 bytes")
            out += sync_range.fingerprint
        elif sync_range.kind is RangeKind.ITEM_SET:
            out += encode_uvarint(len(sync_range.items))
            last_time = 0
            for item_time, item_hash in sync_range.items:
                if len(item_hash) != HASH_SIZE or item_time < last_time:
                    raise ValueError("item set items must be sorted 32-byte hashes")
                out += encode_uvarint(item_time - last_time)
                out += item_hash
                last_time = item_time
            out.append(int(sync_range.reconciled))
        previous = sync_range.upper
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.data)

    def varint(self, what: str, limit: int) -> int:
        value = 0
        for index in range(MAX_VARINT_BYTES):
            if self.position >= len(self.data):
                raise SyncWireError(f"payload ends inside {what}")
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if byte == 0 and index > 0:
                    raise SyncWireError(f"{what} is not a minimal varint")
                if value > limit:
                    raise SyncWireError(f"{what} {value} is over the limit of {limit}")
                return value
        raise SyncWireError(f"{what} is a varint of more than {MAX_VARINT_BYTES} bytes")

    def take(self, count: int, what: str) -> bytes:
        end = self.position + count
        if end > len(self.data):
            raise SyncWireError(f"payload ends inside {what}")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]


def decode_payload(data: bytes) -> SyncPayload:
    """A reconciliation payload, or SyncWireError saying what is wrong with it."""
    if len(data) > MAX_PAYLOAD_SIZE:
        raise SyncWireError(f"payload of {len(data)} bytes is over the {MAX_PAYLOAD_SIZE} limit")
    if data in (b"", EMPTY_PAYLOAD):
        return SyncPayload()  # no ranges (nwaku answers a topic mismatch with an empty frame)
    reader = _Reader(data)
    pubsub_topics = _topics(reader, "pubsub")
    content_topics = _topics(reader, "content")
    start = reader.varint("the start timestamp", MAX_TIMESTAMP)
    if reader.done:
        raise SyncWireError("payload names its start but holds no ranges")
    ranges: list[SyncRange] = []
    previous = (start, ZERO_HASH)
    items_total = 0
    while not reader.done:
        if len(ranges) == MAX_RANGES:
            raise SyncWireError(f"payload holds more than {MAX_RANGES} ranges")
        timestamp = previous[0] + reader.varint("a bound's timestamp", MAX_TIMESTAMP)
        if timestamp > MAX_TIMESTAMP:
            raise SyncWireError("a bound's timestamp is beyond int64")
        digest = ZERO_HASH
        if timestamp == previous[0]:
            length = reader.byte("a bound's hash length")
            if not 1 <= length <= HASH_SIZE:
                raise SyncWireError(f"a bound's hash prefix of {length} bytes")
            digest = reader.take(length, "a bound's hash") + bytes(HASH_SIZE - length)
        upper = (timestamp, digest)
        if upper <= previous:
            raise SyncWireError("range bounds do not increase")
        kind_byte = reader.byte("a range type")
        if kind_byte > RangeKind.ITEM_SET:
            raise SyncWireError(f"unknown range type {kind_byte}")
        kind = RangeKind(kind_byte)
        if kind is RangeKind.SKIP:
            ranges.append(SyncRange(upper, kind))
        elif kind is RangeKind.FINGERPRINT:
            ranges.append(
                SyncRange(upper, kind, fingerprint=reader.take(HASH_SIZE, "a fingerprint"))
            )
        else:
            count = reader.varint("an item count", MAX_ITEMS - items_total)
            items_total += count
            items: list[SyncId] = []
            last_time = 0
            # nwaku reads every lower bound's hash as zero, and so may fill a range from there.
            lower = (previous[0], ZERO_HASH)
            for _ in range(count):
                last_time += reader.varint("an item's timestamp", MAX_TIMESTAMP)
                if last_time > MAX_TIMESTAMP:
                    raise SyncWireError("an item's timestamp is beyond int64")
                item = (last_time, reader.take(HASH_SIZE, "an item's hash"))
                if not lower <= item < upper:
                    raise SyncWireError("an item lies outside its range")
                if items and item <= items[-1]:
                    raise SyncWireError("item set is not sorted")
                items.append(item)
            reconciled = reader.byte("the reconciled flag")
            if reconciled > 1:
                raise SyncWireError(f"reconciled flag {reconciled} is not 0 or 1")
            ranges.append(SyncRange(upper, kind, items=tuple(items), reconciled=bool(reconciled)))
        previous = upper
    return SyncPayload(pubsub_topics, content_topics, start, tuple(ranges))


def _topics(reader: _Reader, kind: str) -> tuple[str, ...]:
    count = reader.varint(f"the {kind} topic count", MAX_TOPICS)
    topics: list[str] = []
    for _ in range(count):
        length = reader.varint(f"a {kind} topic's length", MAX_TOPIC_LENGTH)
        try:
            topics.append(reader.take(length, f"a {kind} topic").decode())
        except UnicodeDecodeError:
            raise SyncWireError(f"a {kind} topic is not UTF-8") from None
    return tuple(topics)


@dataclass(frozen=True, slots=True)
class TransferredMessage:
    pubsub_topic: str
    message: WakuMessage
    encoded: bytes
    """The WakuMessage's bytes as received (archived verbatim)."""


def _field(number: int, value: bytes) -> bytes:
    return encode_uvarint(number << 3 | 2) + encode_uvarint(len(value)) + value


def encode_transfer(pubsub_topic: str, encoded_message: bytes) -> bytes:
    """nwaku's field numbers and order: the topic (1) first, then the message (2)."""
    return _field(1, pubsub_topic.encode()) + _field(2, encoded_message)


def decode_transfer(data: bytes) -> TransferredMessage:
    """One transfer message; both fields are required. Unknown fields are skipped only when
    length-delimited or varint (what protobuf writers emit)."""
    if len(data) > MAX_TRANSFER_SIZE:
        raise SyncWireError(f"transfer message of {len(data)} bytes is over the limit")
    reader = _Reader(data)
    encoded: bytes | None = None
    topic: str | None = None
    while not reader.done:
        key = reader.varint("a field key", 2**32)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            reader.varint("a varint field", 2**64 - 1)
            continue
        if wire_type != 2:
            raise SyncWireError(f"field {number} has unsupported wire type {wire_type}")
        value = reader.take(reader.varint("a field length", len(data)), f"field {number}")
        if number == 2:
            encoded = value
        elif number == 1:
            try:
                topic = value.decode()
            except UnicodeDecodeError:
                raise SyncWireError("pubsub topic is not UTF-8") from None
    if encoded is None or topic is None:
        raise SyncWireError("transfer message lacks its message or pubsub topic")
    if not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise SyncWireError("pubsub topic is empty or too long")
    try:
        message = WakuMessage.decode(encoded)
    except MessageError as exc:
        raise SyncWireError(f"not a WakuMessage: {exc}") from None
    return TransferredMessage(topic, message, encoded)
