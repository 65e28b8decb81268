"""Choosing a community's shard: free ones from the range, a named one, the shared one."""

from __future__ import annotations

import random

import pytest

from chat.communities.shards import ShardChoiceError, choose_shard


def test_a_free_shard_of_the_range_is_picked() -> None:
    taken = set(range(64, 100))
    plan = choose_shard(16, taken, random.Random(3), community_range=(64, 101))
    assert plan.shard in (100, 101) and plan.protected and plan.cluster_id == 16


def test_a_named_shard_is_used_when_free_and_refused_otherwise() -> None:
    assert choose_shard(1, [], random.Random(), named=300).shard == 300
    with pytest.raises(ShardChoiceError, match="used by another"):
        choose_shard(1, [300], random.Random(), named=300)
    with pytest.raises(ShardChoiceError, match="outside the community range"):
        choose_shard(1, [], random.Random(), named=5)


def test_the_shared_shard_is_unprotected() -> None:
    plan = choose_shard(1, [], random.Random(), shared=True, shared_shard=7)
    assert (plan.shard, plan.protected) == (7, False)
    with pytest.raises(ShardChoiceError, match="not both"):
        choose_shard(1, [], random.Random(), shared=True, named=100)


def test_a_full_range_is_a_clear_error() -> None:
    with pytest.raises(ShardChoiceError, match="every shard"):
        choose_shard(1, [64, 65], random.Random(), community_range=(64, 65))
