"""Sync wire codec: the spec's layout byte by byte, round trips, and malformed input refused
with SyncWireError."""

from __future__ import annotations

import pytest

from chat.waku.message import WakuMessage
from chat.waku.sync.wire import (
    MAX_ITEMS,
    MAX_RANGES,
    ZERO_HASH,
    RangeKind,
    SyncPayload,
    SyncRange,
    SyncWireError,
    decode_payload,
    decode_transfer,
    encode_payload,
    encode_transfer,
)

HASH_A = bytes([0xAA]) + bytes(30) + b"\x01"
HASH_B = bytes([0xAA, 0x07]) + bytes(30)


def test_layout_of_a_payload_byte_by_byte() -> None:
    payload = SyncPayload(
        cluster_id=1,
        shards=(0, 300),
        ranges=(
            SyncRange((1000, ZERO_HASH), RangeKind.SKIP),
            SyncRange((1200, ZERO_HASH), RangeKind.FINGERPRINT, fingerprint=HASH_A),
            SyncRange((1200, HASH_B), RangeKind.ITEM_SET, items=((1200, HASH_A),), reconciled=True),
        ),
    )
    expected = (
        b"\x01"  # cluster 1
        + b"\x02\x00\xac\x02"  # two shards: 0, 300
        + b"\xe8\x07\x00"  # bound 1000 (diff from 0), skip
        + b"\xc8\x01\x01"  # bound +200, fingerprint
        + HASH_A
        + b"\x00\x02\xaa\x07"  # same timestamp: 2 bytes of the hash (differs at byte 0)
        + b"\x02\x01"  # item set of one
        + b"\xb0\x09"  # item timestamp 1200 from 0
        + HASH_A
        + b"\x01"  # reconciled
    )
    assert encode_payload(payload) == expected
    assert decode_payload(expected) == payload


def test_empty_payload_is_the_header_only() -> None:
    assert encode_payload(SyncPayload(1, (3,))) == b"\x01\x01\x03"
    assert decode_payload(b"\x01\x01\x03") == SyncPayload(1, (3,))


def test_a_hash_after_a_new_timestamp_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="cannot carry a hash"):
        encode_payload(SyncPayload(1, (0,), (SyncRange((5, HASH_A), RangeKind.SKIP),)))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "ends inside the cluster id"),
        (b"\x01\x05\x00", "ends inside a shard"),
        (b"\x01\x00\x05", "ends inside a range type"),
        (b"\x01\x00\x05\x03", "unknown range type 3"),
        (b"\x01\x00\x05\x01" + bytes(31), "ends inside a fingerprint"),
        (b"\x01\x00\x00\x21" + bytes(33), "hash prefix of 33 bytes"),
        (b"\x01\x00\x00\x01\x00\x00", "do not increase"),
        (b"\x01\x00\x05\x00\x00\x01\x00\x00", "do not increase"),
        (b"\x01\x00\x80\x00\x00", "not a minimal varint"),
        (b"\x01\x00" + b"\xff" * 11, "more than 10 bytes"),
        (b"\x01\x00\x05\x02\x01\x09" + bytes(32) + b"\x00", "outside its range"),
        (b"\x01\x00\x05\x02\x01\x01" + bytes(32) + b"\x02", "reconciled flag 2"),
        (b"\x01\x00\x05\x02\x02\x01" + HASH_A + b"\x00" + HASH_A + b"\x00", "not sorted"),
        (b"\x01\x00\x05\x02" + b"\x81\x40", "over the limit"),
        (b"\x01\xff\x7f", "over the limit"),
    ],
)
def test_malformed_payloads_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(SyncWireError, match=reason):
        decode_payload(data)


def test_too_many_ranges_are_refused() -> None:
    data = b"\x01\x00" + b"\x01\x00" * (MAX_RANGES + 1)
    with pytest.raises(SyncWireError, match="more than"):
        decode_payload(data)


def test_an_oversized_item_list_is_refused() -> None:
    count = MAX_ITEMS + 1
    data = b"\x01\x00\x7f\x02" + bytes([0x80 | (count & 0x7F), count >> 7])
    with pytest.raises(SyncWireError, match="item count"):
        decode_payload(data)


def test_transfer_round_trip_and_refusals() -> None:
    message = WakuMessage(payload=b"hi", content_topic="/app/1/chat/proto", timestamp=5)
    encoded = message.encode()
    received = decode_transfer(encode_transfer("/waku/2/rs/1/0", encoded))
    assert received.pubsub_topic == "/waku/2/rs/1/0"
    assert received.message == message
    assert received.encoded == encoded
    with pytest.raises(SyncWireError, match="lacks"):
        decode_transfer(b"\x0a\x00")
    with pytest.raises(SyncWireError, match="not a WakuMessage"):
        decode_transfer(encode_transfer("/waku/2/rs/1/0", b"\xff\xff"))
    with pytest.raises(SyncWireError, match="wire type"):
        decode_transfer(b"\x0d\x00\x00\x00\x00")
