"""Following a community as a service node: the shard key moves only with a newer validly
signed description, from the shard's topic or a copy on the default shard."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from harness.communities import NOW, new_community, person, with_members

from chat.cli import build_parser
from chat.commands.node import followers_from, service_config_from
from chat.communities.channel import community_content_topic, requests_content_topic
from chat.communities.description import JoinPolicy, first_description, sign_description
from chat.communities.follower import CommunityFollower
from chat.communities.link import CommunityLink
from chat.communities.moderation import ban
from chat.communities.signer import OwnerKey
from chat.config import load_config
from chat.errors import UserError
from chat.proto import community_pb2
from chat.waku.protected import ShardPublicKey
from chat.waku.service_node import ServiceNodeConfig

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


def test_a_replayed_old_description_cannot_pin_a_restarted_node_to_the_old_key(
    tmp_path: Path,
) -> None:
    # The node saw the ban's version (a new key); it restarts from the same link, which
    # still names the old key, and an old description is replayed to it on the unprotected
    # default shard: it keeps the newest it ever saw, and its key.
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    before = with_members(community, [bob])
    link = CommunityLink.of(before).encode()
    args = argparse.Namespace(community=[link])
    (follower,) = followers_from(args, 16, kept_dir=tmp_path)
    banned = community.sign(ban(before, alice.key, bob.key, NOW + 10).description)
    new_key = follower.offer(
        follower.pubsub_topic, community_content_topic(before.id), banned.signed
    )
    assert new_key == ShardPublicKey.from_bytes(banned.protection_key)

    (restarted,) = followers_from(args, 16, kept_dir=tmp_path)
    assert restarted.key == new_key
    replay = community_pb2.RequestsMessage(description=before.signed).SerializeToString()
    assert restarted.offer(DEFAULT, requests_content_topic(before.id), replay) is None
    assert restarted.key == new_key
    # A damaged file is a log line, not a crash: the node starts from the link.
    for path in tmp_path.glob("*.description"):
        path.write_bytes(b"\x00garbage")
    (damaged,) = followers_from(args, 16, kept_dir=tmp_path)
    assert damaged.key == community.protection.public_key


def node_config(data_dir: Path, link: str) -> ServiceNodeConfig:
    argv = ["--data-dir", str(data_dir), "node", "--cluster", "16", "--community", link]
    return service_config_from(build_parser().parse_args(argv), load_config(data_dir=data_dir))


def test_a_shared_shard_community_is_served_unprotected(tmp_path: Path) -> None:
    owner_key = OwnerKey.generate()
    alice = person("alice")
    shared = sign_description(
        owner_key,
        first_description(
            owner_key.chat_key, alice.key, "alice", alice.link, "QA", "", JoinPolicy.OPEN,
            16, 63, b"", ("general",), NOW,
        ),
    )  # fmt: skip
    config = node_config(tmp_path, CommunityLink.of(shared).encode())
    assert 63 in config.node.shards
    assert "/waku/2/rs/16/63" not in config.protected


def test_a_restarted_node_protects_with_the_kept_key_from_the_start(tmp_path: Path) -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    before = with_members(community, [bob])
    link = CommunityLink.of(before).encode()
    assert node_config(tmp_path, link).protected["/waku/2/rs/16/200"] == (
        community.protection.public_key
    )
    kept_dir = tmp_path / "node" / "communities"
    (follower,) = followers_from(argparse.Namespace(community=[link]), 16, kept_dir=kept_dir)
    banned = community.sign(ban(before, alice.key, bob.key, NOW + 10).description)
    follower.offer(follower.pubsub_topic, community_content_topic(before.id), banned.signed)
    restarted = node_config(tmp_path, link)
    assert restarted.protected["/waku/2/rs/16/200"] == ShardPublicKey.from_bytes(
        banned.protection_key
    )


def test_a_node_restarted_with_a_newer_link_protects_with_the_links_key(tmp_path: Path) -> None:
    # The node kept the first ban's version, then was down while a second ban moved the key
    # again; its operator restarts it with the community's new link, which names the newest
    # key. The kept file is older than that link: the node must not go back to the key the
    # first ban made (members no longer sign with it; the second banned member holds it).
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    community = new_community(alice)
    before = with_members(community, [bob, carol])
    old_args = argparse.Namespace(community=[CommunityLink.of(before).encode()])
    (follower,) = followers_from(old_args, 16, kept_dir=tmp_path)
    first_ban = community.sign(ban(before, alice.key, bob.key, NOW + 10).description)
    follower.offer(follower.pubsub_topic, community_content_topic(before.id), first_ban.signed)
    second_ban = community.sign(ban(first_ban, alice.key, carol.key, NOW + 20).description)
    newest_key = ShardPublicKey.from_bytes(second_ban.protection_key)
    assert newest_key != ShardPublicKey.from_bytes(first_ban.protection_key)

    new_args = argparse.Namespace(community=[CommunityLink.of(second_ban).encode()])
    (restarted,) = followers_from(new_args, 16, kept_dir=tmp_path)
    assert restarted.key == newest_key
    # Restarted again with that same link, the kept version (now the newest) still counts.
    (again,) = followers_from(new_args, 16, kept_dir=tmp_path)
    assert again.key == newest_key
