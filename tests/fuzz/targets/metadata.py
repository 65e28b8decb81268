"""Waku metadata (chat/waku/metadata.py): the cluster and shards every peer announces on
every new connection, decoded before anything else is known about it."""

from __future__ import annotations

from chat.waku.metadata.wire import MAX_SHARD, MetadataError, decode_metadata, encode_metadata
from fuzz.contract import Target, check, round_trip


def fuzz_metadata(data: bytes) -> None:
    try:
        info = decode_metadata(data)
    except MetadataError:
        return
    check(all(0 <= s <= MAX_SHARD for s in info.shards), f"shards {info.shards}")
    if info.cluster_id is not None:
        round_trip(info, decode_metadata(encode_metadata(info.cluster_id, info.shards)))


TARGETS = (
    Target(
        name="metadata",
        decoder="chat.waku.metadata.wire.decode_metadata",
        contract="MetadataError only; shards within 0..1023; round trip",
        fuzz=fuzz_metadata,
        seeds=lambda: [
            encode_metadata(42, [0, 1]),
            encode_metadata(1, range(8)),
            encode_metadata(65535, [1023]),
        ],
        max_len=2048,
    ),
)
