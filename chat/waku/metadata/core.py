"""Waku metadata, sans-IO: whether a peer may stay, and what each connected peer told us.

A peer on another cluster, or one that does not say, must go (what nwaku does). Shards never
decide it: the spec says not to drop peers over them. The book also counts each peer's open
inbound streams, so one peer cannot hold an unbounded number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.waku.metadata.wire import ShardInfo

if TYPE_CHECKING:
    from libp2p.peer.id import ID

MAX_INBOUND_STREAMS_PER_PEER = 8
"""Inbound metadata streams one peer may hold open at once; more are reset at once."""


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG_CLUSTER = "wrong-cluster"
    NO_CLUSTER = "no-cluster"
    NO_ANSWER = "no-answer"
    """The peer refused the protocol, timed out, or answered with garbage."""


def judge(own_cluster: int, remote: ShardInfo | None) -> Verdict:
    """Whether a peer may stay. Shards never decide this: the spec says not to drop on them."""
    if remote is None:
        return Verdict.NO_ANSWER
    if remote.cluster_id is None:
        return Verdict.NO_CLUSTER
    if remote.cluster_id != own_cluster:
        return Verdict.WRONG_CLUSTER
    return Verdict.ACCEPTED


@dataclass(frozen=True)
class MetadataOutcome:
    peer_id: ID
    verdict: Verdict
    remote: ShardInfo | None
    detail: str = ""


class MetadataBook:
    """What each connected peer told us about itself, and its open inbound streams."""

    def __init__(self, max_inbound_per_peer: int = MAX_INBOUND_STREAMS_PER_PEER) -> None:
        self.max_inbound_per_peer = max_inbound_per_peer
        self._info: dict[ID, ShardInfo] = {}
        self._inbound: dict[ID, int] = {}

    def record(self, peer_id: ID, info: ShardInfo) -> None:
        self._info[peer_id] = info

    def get(self, peer_id: ID) -> ShardInfo | None:
        return self._info.get(peer_id)

    def forget(self, peer_id: ID) -> None:
        self._info.pop(peer_id, None)

    def peers_on(self, cluster_id: int, shard: int) -> list[ID]:
        return [
            p for p, i in self._info.items() if i.cluster_id == cluster_id and shard in i.shards
        ]

    def open_inbound(self, peer_id: ID) -> bool:
        """Count a new inbound stream; False when the peer already holds its maximum."""
        count = self._inbound.get(peer_id, 0)
        if count >= self.max_inbound_per_peer:
            return False
        self._inbound[peer_id] = count + 1
        return True

    def close_inbound(self, peer_id: ID) -> None:
        count = self._inbound.get(peer_id, 0) - 1
        if count > 0:
            self._inbound[peer_id] = count
        else:
            self._inbound.pop(peer_id, None)

    def inbound_streams(self, peer_id: ID) -> int:
        return self._inbound.get(peer_id, 0)
