"""Where a new community lives: a free shard of the network's community range, one the owner
names, or the shared unprotected shard (for mass creation in QA runs).

A shard is free when no community we know (joined, or seen on the network) uses it; two
owners who pick at once may still collide, which is safe (each shard's messages are signed
with its community's key, a relay validates per shard and key) but costs both communities
the bandwidth of the other, so the pick is random among the free ones rather than the first.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from chat.communities.description import MAX_SHARD

DEFAULT_COMMUNITY_RANGE = (64, 1023)
"""Shards 0-63 carry the network's default traffic (contacts, 1:1 chats, groups)."""
DEFAULT_SHARED_SHARD = 63


class ShardChoiceError(ValueError):
    """No shard can be chosen as asked; a sentence for the user."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    cluster_id: int
    shard: int
    protected: bool
    """False for the shared shard: its messages are not signed (anyone may publish there)."""


def choose_shard(
    cluster_id: int,
    taken: Iterable[int],
    rng: random.Random,
    *,
    community_range: tuple[int, int] = DEFAULT_COMMUNITY_RANGE,
    named: int | None = None,
    shared: bool = False,
    shared_shard: int = DEFAULT_SHARED_SHARD,
) -> ShardPlan:
    low, high = community_range
    if not 0 <= low <= high <= MAX_SHARD:
        raise ShardChoiceError(f"the community range {low}-{high} is not within 0-{MAX_SHARD}")
    if shared:
        if named is not None:
            raise ShardChoiceError("name a shard or ask for the shared one, not both")
        return ShardPlan(cluster_id, shared_shard, protected=False)
    used = set(taken)
    if named is not None:
        if not low <= named <= high:
            raise ShardChoiceError(f"shard {named} is outside the community range {low}-{high}")
        if named in used:
            raise ShardChoiceError(f"shard {named} is used by another community")
        return ShardPlan(cluster_id, named, protected=True)
    free = [shard for shard in range(low, high + 1) if shard not in used]
    if not free:
        raise ShardChoiceError(f"every shard of the community range {low}-{high} is used")
    return ShardPlan(cluster_id, rng.choice(free), protected=True)
