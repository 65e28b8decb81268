"""Waku metadata (66/WAKU2-METADATA) on the wire: the message both sides send, and its codec.

Request and response are the same message. We write the shards twice, like nwaku: field 2
unpacked (js-waku reads only that) and field 3 packed (nwaku >= 0.26, go-waku). We read field 3
if it holds anything, else field 2, either packed or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chat.waku.proto.metadata_pb2 import WakuMetadataRequest, WakuMetadataResponse
from chat.waku.protowire import optional, parse

METADATA_PROTOCOL = "/vac/waku/metadata/1.0.0"
MAX_METADATA_FRAME = 1024
"""nwaku's read limit for this protocol."""
MAX_SHARD = 1023


class MetadataError(ValueError):
    """A metadata message that cannot be decoded."""


@dataclass(frozen=True)
class ShardInfo:
    cluster_id: int | None
    shards: tuple[int, ...]


def encode_metadata(cluster_id: int, shards: Iterable[int]) -> bytes:
    """One metadata message (request and response are byte-identical for the same data)."""
    ordered = sorted(set(shards))
    msg = WakuMetadataRequest(cluster_id=cluster_id, shards=ordered, shards_v2=ordered)
    return msg.SerializeToString()


def decode_metadata(data: bytes) -> ShardInfo:
    if len(data) > MAX_METADATA_FRAME:
        raise MetadataError(f"metadata message of {len(data)} bytes is over the limit")
    msg = parse(WakuMetadataResponse, data, MetadataError, "a metadata message")
    shards = tuple(msg.shards_v2) if len(msg.shards_v2) else tuple(msg.shards)
    if any(s > MAX_SHARD for s in shards):
        raise MetadataError(f"shard numbers must be at most {MAX_SHARD}")
    return ShardInfo(cluster_id=optional(msg, "cluster_id"), shards=tuple(sorted(set(shards))))
