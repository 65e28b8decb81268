"""Sync wire codec: nwaku's layout byte by byte (vectors worked out by hand from the rules of
nwaku's waku/waku_store_sync/codec.nim: RangesData.deltaEncode and WakuMessageAndTopic.encode),
round trips, and malformed input refused with SyncWireError."""

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
FINGERPRINT = bytes(range(1, 33))
SHARD0 = "/waku/2/rs/1/0"
TOPIC_LIST = b"\x01\x0e" + SHARD0.encode()  # one pubsub topic: its length (14), its bytes
NO_TOPICS = b"\x00"
STARTS_AT_0 = NO_TOPICS + NO_TOPICS + b"\x00"  # no topics either kind, start timestamp 0


def test_nwaku_first_payload_one_fingerprint_over_an_hour() -> None:
    """What nwaku's `initiate` sends: its shard topic, no content topics, one fingerprint range
    from (start, 0) to (end, all 0xff). The end differs from the start, so its hash is not
    written (and reads back as zero)."""
    start = 1_700_000_000_000_000_000
    end = start + 3_600 * 10**9
    payload = SyncPayload(
        (SHARD0,),
        (),
        start,
        (SyncRange((end, ZERO_HASH), RangeKind.FINGERPRINT, fingerprint=FINGERPRINT),),
    )
    expected = (
        TOPIC_LIST
        + NO_TOPICS  # content topics: none (all)
        + bytes.fromhex("8080a8b1e39fe7cb17")  # start, LEB128 (9 bytes)
        + bytes.fromhex("80c0e285e368")  # end - start: one hour in ns
        + b"\x01"  # range type: fingerprint
        + FINGERPRINT
    )
    assert encode_payload(payload) == expected
    assert decode_payload(expected) == payload


def test_nwaku_answer_with_a_skip_an_item_set_and_a_fingerprint() -> None:
    """An answer as nwaku's processPayload builds one: consecutive time partitions with zero
    hashes; item timestamps are deltas restarting from 0 in each item set."""
    items = ((1150, HASH_A), (1180, HASH_B))
    payload = SyncPayload(
        (SHARD0,),
        (),
        1000,
        (
            SyncRange((1100, ZERO_HASH), RangeKind.SKIP),
            SyncRange((1200, ZERO_HASH), RangeKind.ITEM_SET, items=items),
            SyncRange((1300, ZERO_HASH), RangeKind.FINGERPRINT, fingerprint=FINGERPRINT),
        ),
    )
    expected = (
        TOPIC_LIST
        + NO_TOPICS
        + b"\xe8\x07"  # start 1000
        + b"\x64\x00"  # +100, skip
        + b"\x64\x02\x02"  # +100, item set of two
        + b"\xfe\x08"  # first item: 1150 from 0
        + HASH_A
        + b"\x1e"  # second item: +30
        + HASH_B
        + b"\x00"  # not reconciled
        + b"\x64\x01"  # +100, fingerprint
        + FINGERPRINT
    )
    assert encode_payload(payload) == expected
    assert decode_payload(expected) == payload


def test_a_bound_at_the_same_timestamp_writes_its_hash_prefix() -> None:
    """A difference of 0: one byte N and the hash's first N bytes, N reaching the first byte
    that differs from the zero hash (nwaku's rule), which here is also the last non-zero."""
    prefix_bound = bytes([0x00, 0x00, 0x7B]) + bytes(29)
    payload = SyncPayload(
        (),
        (),
        1000,
        (
            SyncRange((1200, ZERO_HASH), RangeKind.SKIP),
            SyncRange((1200, prefix_bound), RangeKind.ITEM_SET, reconciled=True),
        ),
    )
    expected = (
        NO_TOPICS
        + NO_TOPICS
        + b"\xe8\x07"  # start 1000
        + b"\xc8\x01\x00"  # +200, skip
        + b"\x00\x03\x00\x00\x7b"  # +0: three bytes of the hash
        + b"\x02\x00\x01"  # item set of none, reconciled
    )
    assert encode_payload(payload) == expected
    assert decode_payload(expected) == payload


def test_a_hash_nwaku_would_cut_short_is_written_up_to_its_last_non_zero_byte() -> None:
    # nwaku would write only 0xAA (it stops at the first byte that differs from zero), which
    # reads back as a lower bound; we write what keeps the bound exact, and nwaku reads it.
    payload = SyncPayload((), (), 5, (SyncRange((5, HASH_B), RangeKind.SKIP),))
    assert encode_payload(payload) == STARTS_AT_0[:-1] + b"\x05\x00\x02\xaa\x07\x00"
    assert decode_payload(encode_payload(payload)) == payload


def test_no_ranges_is_one_zero_byte_and_an_empty_frame_reads_the_same() -> None:
    # nwaku writes @[0] for no ranges (leaving its topics out), and an empty frame when the
    # topics do not match; it reads any frame of at most one byte as no ranges.
    assert encode_payload(SyncPayload((SHARD0,), (), 1000)) == b"\x00"
    assert decode_payload(b"\x00") == SyncPayload()
    assert decode_payload(b"") == SyncPayload()


def test_topics_round_trip_and_content_topics_are_read() -> None:
    payload = SyncPayload(
        (SHARD0, "/waku/2/rs/1/1"),
        ("/app/1/chat/proto",),
        7,
        (SyncRange((9, ZERO_HASH), RangeKind.FINGERPRINT, fingerprint=FINGERPRINT),),
    )
    data = encode_payload(payload)
    assert data.startswith(b"\x02\x0e" + SHARD0.encode() + b"\x0e/waku/2/rs/1/1\x01\x11/app")
    assert decode_payload(data) == payload


def test_a_hash_after_a_new_timestamp_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="cannot carry a hash"):
        encode_payload(SyncPayload((), (), 0, (SyncRange((5, HASH_A), RangeKind.SKIP),)))


def test_items_may_start_at_the_lower_bound_timestamp_with_a_zero_hash() -> None:
    """nwaku reads every lower bound's hash as zero, so its item set for a range may hold items
    below the previous bound's hash at that timestamp: read, not refused."""
    data = (
        STARTS_AT_0[:-1]
        + b"\x05"  # start 5
        + b"\x00\x01\x40\x00"  # +0, hash 0x40.., skip
        + b"\x00\x01\x80\x02\x01"  # +0, hash 0x80.., item set of one
        + b"\x05"  # item at 5 ...
        + bytes([0x10])  # ... with hash 0x10.. (below the previous bound's 0x40..)
        + bytes(31)
        + b"\x00"
    )
    payload = decode_payload(data)
    assert payload.ranges[1].items == ((5, bytes([0x10]) + bytes(31)),)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01", "ends inside a pubsub topic's length"),
        (b"\x01\x05ab", "ends inside a pubsub topic"),
        (b"\x01\x02\xff\xfe", "pubsub topic is not UTF-8"),
        (b"\x00\x01\x01\xc3", "content topic is not UTF-8"),
        (b"\x81\x08", "pubsub topic count 1025 is over the limit"),
        (b"\x01\x81\x02", "topic's length 257 is over the limit"),
        (b"\x00\x00", "ends inside the start timestamp"),
        (b"\x00\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "start timestamp"),
        (STARTS_AT_0, "names its start but holds no ranges"),
        (STARTS_AT_0 + b"\x05", "ends inside a range type"),
        (STARTS_AT_0 + b"\x05\x03", "unknown range type 3"),
        (STARTS_AT_0 + b"\x05\x01" + bytes(31), "ends inside a fingerprint"),
        (STARTS_AT_0 + b"\x00\x21" + bytes(33), "hash prefix of 33 bytes"),
        (STARTS_AT_0 + b"\x00\x01\x00\x00", "do not increase"),
        (STARTS_AT_0 + b"\x05\x00\x00\x01\x00\x00", "do not increase"),
        (b"\x00\x00\x80\x00\x00", "not a minimal varint"),
        (STARTS_AT_0 + b"\xff" * 11, "more than 10 bytes"),
        (STARTS_AT_0 + b"\x05\x02\x01\x09" + bytes(32) + b"\x00", "outside its range"),
        (STARTS_AT_0 + b"\x05\x02\x01\x01" + bytes(32) + b"\x02", "reconciled flag 2"),
        (STARTS_AT_0 + b"\x05\x02\x02\x01" + HASH_A + b"\x00" + HASH_A + b"\x00", "not sorted"),
        (STARTS_AT_0 + b"\x05\x02" + b"\x81\x40", "over the limit"),
    ],
)
def test_malformed_payloads_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(SyncWireError, match=reason):
        decode_payload(data)


def test_too_many_ranges_are_refused() -> None:
    data = STARTS_AT_0 + b"\x01\x00" * (MAX_RANGES + 1)
    with pytest.raises(SyncWireError, match="more than"):
        decode_payload(data)


def test_an_oversized_item_list_is_refused() -> None:
    count = MAX_ITEMS + 1
    data = STARTS_AT_0 + b"\x7f\x02" + bytes([0x80 | (count & 0x7F), count >> 7])
    with pytest.raises(SyncWireError, match="item count"):
        decode_payload(data)


def test_transfer_is_nwakus_topic_one_message_two() -> None:
    """WakuMessageAndTopic as nwaku writes it: field 1 the pubsub topic, field 2 the message,
    in that order."""
    message = WakuMessage(payload=b"hi", content_topic="/a/1/b/proto", timestamp=5)
    encoded_message = (
        b"\x0a\x02hi"  # payload = 1
        + b"\x12\x0c/a/1/b/proto"  # content_topic = 2
        + b"\x50\x0a"  # timestamp = 10, sint64 5
    )
    assert message.encode() == encoded_message
    expected = b"\x0a\x0e" + SHARD0.encode() + b"\x12\x14" + encoded_message  # 20 bytes
    assert encode_transfer(SHARD0, encoded_message) == expected
    received = decode_transfer(expected)
    assert (received.pubsub_topic, received.message, received.encoded) == (
        SHARD0,
        message,
        encoded_message,
    )
    # The fields in the other order (protobuf allows it) read the same.
    swapped = b"\x12\x14" + encoded_message + b"\x0a\x0e" + SHARD0.encode()
    assert decode_transfer(swapped) == received


def test_transfer_refusals() -> None:
    encoded = WakuMessage(payload=b"hi", content_topic="/a/1/b/proto", timestamp=5).encode()
    with pytest.raises(SyncWireError, match="lacks"):
        decode_transfer(b"\x0a\x00")
    with pytest.raises(SyncWireError, match="lacks"):
        decode_transfer(b"\x12" + bytes([len(encoded)]) + encoded)  # no topic
    with pytest.raises(SyncWireError, match="not a WakuMessage"):
        decode_transfer(encode_transfer(SHARD0, b"\xff\xff"))
    with pytest.raises(SyncWireError, match="not UTF-8"):
        decode_transfer(b"\x0a\x01\xff" + b"\x12" + bytes([len(encoded)]) + encoded)
    with pytest.raises(SyncWireError, match="wire type"):
        decode_transfer(b"\x0d\x00\x00\x00\x00")
