"""Following a community as a service node: the shard key moves only with a newer validly
signed description, from the shard's topic or a copy on the default shard."""

from __future__ import annotations

import argparse

import pytest
from harness.communities import NOW, new_community, person, with_members

from chat.commands.node import followers_from
from chat.communities.channel import community_content_topic, requests_content_topic
from chat.communities.description import sign_description
from chat.communities.follower import CommunityFollower
from chat.communities.link import CommunityLink
from chat.communities.moderation import ban
from chat.errors import UserError
from chat.proto import community_pb2
from chat.waku.protected import ShardPublicKey

DEFAULT = "/waku/2/rs/16/0"


def test_a_ban_moves_the_key_and_nothing_else_does() -> None:
    alice, bob, mallory = person("alice"), person("bob"), person("mallory")
    community = new_community(alice)
    description = with_members(community, [bob])
    follower = CommunityFollower(CommunityLink.of(community.description), DEFAULT)
    shard = follower.pubsub_topic
    topic = community_content_topic(description.id)
    assert follower.key == community.protection.public_key
    assert follower.watches(shard, topic) and follower.watches(
        DEFAULT, requests_content_topic(description.id)
    )
    assert not follower.watches(DEFAULT, topic)
    assert follower.offer(shard, topic, description.signed) is None  # same key
    outcome = ban(description, alice.key, bob.key, NOW + 10)
    banned = community.sign(outcome.description)
    # A forged version naming another key is ignored.
    forged = sign_description(mallory.identity, outcome.description)
    assert follower.offer(shard, topic, forged.signed) is None
    # The real one, as a copy on the default shard, moves the key.
    copy = community_pb2.RequestsMessage(description=banned.signed).SerializeToString()
    new_key = follower.offer(DEFAULT, requests_content_topic(description.id), copy)
    assert new_key == ShardPublicKey.from_bytes(banned.protection_key)
    assert follower.key == new_key and follower.rotations == 1
    # An older one does not move it back.
    assert follower.offer(shard, topic, description.signed) is None
    assert follower.key == new_key


def test_bad_community_options_are_sentences() -> None:
    good = CommunityLink.of(new_community(person("alice")).description).encode()
    with pytest.raises(UserError, match="not a chinwag community link"):
        followers_from(argparse.Namespace(community=["chinwag:xyz"]), 16)
    with pytest.raises(UserError, match="cluster 16; this node serves cluster 1"):
        followers_from(argparse.Namespace(community=[good]), 1)
    (follower,) = followers_from(argparse.Namespace(community=[good]), 16)
    assert follower.pubsub_topic == "/waku/2/rs/16/200"
