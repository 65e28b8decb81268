"""Store nodes with Waku Sync for tests and benchmarks: real ServiceNodes on loopback, their
archives filled directly (history a node already has) or through relay (traffic it hears)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from multiaddr import Multiaddr

from chat.waku.message import WakuMessage, message_hash, now_ns
from chat.waku.node import NodeConfig
from chat.waku.protected import ShardPublicKey
from chat.waku.service_node import ServiceNode, ServiceNodeConfig
from chat.waku.sync.service import SyncOptions
from chat.waku.topics import RelayShard
from harness.archives import store_options_for
from storage.archive import Archive, ArchiveQuery, ArchiveRecord

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
CLUSTER = 42
SHARD0 = RelayShard(CLUSTER, 0).pubsub_topic
CONTENT = "/chinwag/1/sync-test/proto"
FAST_SYNC = SyncOptions(interval=2.0, window=3600.0, offset=0.5)
"""Sessions every 2 s over the last hour, leaving out only the last half second."""


def sync_node(
    archive: Path | str,
    options: SyncOptions | None = FAST_SYNC,
    shards: tuple[int, ...] = (0,),
    protected: Mapping[str, ShardPublicKey] | None = None,
) -> ServiceNode:
    return ServiceNode(
        ServiceNodeConfig(
            node=NodeConfig(listen_addrs=[LOOPBACK], cluster_id=CLUSTER, shards=shards),
            protected=protected or {},
            store=store_options_for(archive),
            sync=options,
            peer_exchange=False,
        )
    )


def history(
    count: int, *, end_ns: int | None = None, spacing_ns: int = 100_000_000
) -> list[ArchiveRecord]:
    """`count` distinct messages on shard 0, the last at `end_ns` (default: 2 s ago)."""
    end = (now_ns() - 2 * 10**9) if end_ns is None else end_ns
    records = []
    tag = uuid.uuid4().hex
    for index in range(count):
        message = WakuMessage(
            f"{tag} {index}".encode(), CONTENT, timestamp=end - (count - 1 - index) * spacing_ns
        )
        records.append(
            ArchiveRecord(
                message_hash(SHARD0, message), SHARD0, CONTENT, message.timestamp, message.encode()
            )
        )
    return records


def record_of(message: WakuMessage, pubsub_topic: str = SHARD0) -> ArchiveRecord:
    return ArchiveRecord(
        message_hash(pubsub_topic, message),
        pubsub_topic,
        message.content_topic,
        message.timestamp,
        message.encode(),
    )


def fill(archive: Archive | None, records: Sequence[ArchiveRecord]) -> None:
    assert archive is not None
    archive.insert_many(records)


def archived_hashes(archive: Archive | None) -> set[bytes]:
    assert archive is not None
    rows = archive.query(ArchiveQuery(limit=10**7))
    return {row.message_hash for row in rows}
