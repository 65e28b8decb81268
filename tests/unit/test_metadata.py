"""Metadata codec: written like nwaku (both shard fields), read like nwaku (3, else 2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from libp2p.peer.id import ID

from chat.waku.metadata.core import MetadataBook, Verdict, judge
from chat.waku.metadata.wire import (
    MAX_METADATA_FRAME,
    MetadataError,
    ShardInfo,
    decode_metadata,
    encode_metadata,
)


def test_encoding_writes_cluster_and_both_shard_fields() -> None:
    # 08 2a: cluster 42 | 10 00 10 01: field 2 unpacked | 1a 02 00 01: field 3 packed
    assert encode_metadata(42, [1, 0, 1]).hex() == "082a100010011a020001"


def test_cluster_zero_and_no_shards_are_still_written() -> None:
    assert encode_metadata(0, []).hex() == "0800"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("082a1a020305", ShardInfo(42, (3, 5))),  # go-waku: field 3 only
        ("082a10031005", ShardInfo(42, (3, 5))),  # js-waku: field 2 unpacked
        ("082a12020305", ShardInfo(42, (3, 5))),  # field 2 packed
        ("082a100710081a020305", ShardInfo(42, (3, 5))),  # field 3 wins over field 2
        ("1001", ShardInfo(None, (1,))),  # no cluster id
        ("", ShardInfo(None, ())),
        ("082a2001", ShardInfo(42, ())),  # unknown field 4 skipped
    ],
)
def test_decoding(wire: str, expected: ShardInfo) -> None:
    assert decode_metadata(bytes.fromhex(wire)) == expected


@pytest.mark.parametrize("wire", ["0a", "08", "ff", "082a1a05"])
def test_malformed_messages_raise(wire: str) -> None:
    with pytest.raises(MetadataError):
        decode_metadata(bytes.fromhex(wire))


def test_oversized_message_and_out_of_range_shards_raise() -> None:
    with pytest.raises(MetadataError):
        decode_metadata(b"\x08\x01" + b"\x10\x01" * MAX_METADATA_FRAME)
    with pytest.raises(MetadataError):
        decode_metadata(encode_metadata(1, [1024]))


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 1023), max_size=64))
def test_round_trip(cluster: int, shards: list[int]) -> None:
    assert decode_metadata(encode_metadata(cluster, shards)) == ShardInfo(
        cluster, tuple(sorted(set(shards)))
    )


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_metadata_error(data: bytes) -> None:
    try:
        decode_metadata(data)
    except MetadataError:
        pass


def test_verdicts() -> None:
    assert judge(42, ShardInfo(42, ())) is Verdict.ACCEPTED
    assert judge(42, ShardInfo(16, (32,))) is Verdict.WRONG_CLUSTER
    assert judge(0, ShardInfo(None, ())) is Verdict.NO_CLUSTER
    assert judge(42, None) is Verdict.NO_ANSWER


def test_book_bounds_inbound_streams_per_peer() -> None:
    peer = ID(b"\x00\x05hello")
    book = MetadataBook(max_inbound_per_peer=2)
    assert book.open_inbound(peer) and book.open_inbound(peer)
    assert not book.open_inbound(peer)
    book.close_inbound(peer)
    assert book.inbound_streams(peer) == 1
    assert book.open_inbound(peer)
    book.record(peer, ShardInfo(42, (0, 1)))
    assert book.peers_on(42, 1) == [peer] and book.peers_on(42, 2) == []
    book.forget(peer)
    assert book.get(peer) is None
