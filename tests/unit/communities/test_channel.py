"""Channel frames: sealed with the epoch's content key, signed inside by the sender; members
cannot impersonate each other, non-members and banned keys are refused, old epochs are
readable only while their key is held."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.secret
import pytest
from harness.communities import NOW, BuiltCommunity, Person, new_community, person, with_members

from chat.communities.channel import (
    MAX_EPOCHS_KEPT,
    ChannelRefused,
    EpochKeys,
    channel_content_topic,
    community_content_topic,
    new_content_key,
    open_frame,
    seal,
)
from chat.communities.description import Description
from chat.communities.moderation import ban, kick
from chat.proto import community_pb2
from chat.waku.topics import parse_content_topic


@dataclass
class Scene:
    alice: Person
    bob: Person
    carol: Person
    community: BuiltCommunity
    description: Description
    keys: EpochKeys

    @property
    def channel(self) -> str:
        return self.description.channels[0].id

    def seal(self, sender: Person, body: bytes, epoch: int | None = None) -> bytes:
        current = self.keys.current
        assert current is not None
        epoch = current[0] if epoch is None else epoch
        key = self.keys.get(epoch)
        assert key is not None
        return seal(sender.identity, self.description.id, self.channel, epoch, key, body)


def scene() -> Scene:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    community = new_community(alice)
    description = with_members(community, [bob, carol])
    keys = EpochKeys()
    keys.add(description.epoch, new_content_key())
    return Scene(alice, bob, carol, community, description, keys)


def test_a_member_seals_and_every_member_opens_with_the_sender_named() -> None:
    s = scene()
    opened = open_frame(s.seal(s.bob, b"hello"), s.channel, s.keys, s.description)
    assert (opened.sender, opened.body, opened.epoch) == (s.bob.key, b"hello", s.description.epoch)


def test_a_member_cannot_pass_a_message_off_as_anothers() -> None:
    s = scene()
    key = s.keys.get(s.description.epoch)
    assert key is not None
    frame = community_pb2.ChannelFrame.FromString(s.seal(s.bob, b"I am carol"))
    inner = community_pb2.ChannelInner.FromString(
        nacl.secret.SecretBox(key).decrypt(frame.ciphertext, frame.nonce)
    )
    inner.sender = s.carol.identity.chat_key
    frame.ciphertext = (
        nacl.secret.SecretBox(key).encrypt(inner.SerializeToString(), frame.nonce).ciphertext
    )
    with pytest.raises(ChannelRefused, match="bad sender signature"):
        open_frame(frame.SerializeToString(), s.channel, s.keys, s.description)


def test_a_frame_cannot_be_replayed_into_another_channel() -> None:
    s = scene()
    other = s.description.channels[1].id
    with pytest.raises(ChannelRefused, match="signature"):
        open_frame(s.seal(s.bob, b"x"), other, s.keys, s.description)
    with pytest.raises(ChannelRefused, match="does not have"):
        open_frame(s.seal(s.bob, b"x"), "f" * 32, s.keys, s.description)


def test_a_non_member_with_the_key_is_refused() -> None:
    s = scene()
    with pytest.raises(ChannelRefused, match="not a member"):
        open_frame(s.seal(person("mallory"), b"hi"), s.channel, s.keys, s.description)


def test_after_a_kick_and_a_ban_their_frames_are_refused_and_new_epochs_unreadable_to_them() -> (
    None
):
    s = scene()
    kicked = s.community.sign(kick(s.description, s.alice.key, s.bob.key, NOW + 10).description)
    banned = s.community.sign(ban(kicked, s.alice.key, s.carol.key, NOW + 20).description)
    old_frame_bob = s.seal(s.bob, b"still here?")
    old_frame_carol = s.seal(s.carol, b"still here?")
    with pytest.raises(ChannelRefused, match="not a member"):
        open_frame(old_frame_bob, s.channel, s.keys, banned)
    with pytest.raises(ChannelRefused, match="banned"):
        open_frame(old_frame_carol, s.channel, s.keys, banned)
    # The remaining members' new epoch: bob and carol hold only the old key.
    their_keys = EpochKeys()
    their_keys.add(s.description.epoch, s.keys.get(s.description.epoch) or b"")
    s.keys.add(banned.epoch, new_content_key())
    s.description = banned
    fresh = s.seal(s.alice, b"after")
    with pytest.raises(ChannelRefused, match="whose key we do not hold"):
        open_frame(fresh, s.channel, their_keys, banned)
    assert open_frame(fresh, s.channel, s.keys, banned).body == b"after"


def test_tampered_or_oversized_frames_are_refused() -> None:
    s = scene()
    frame = bytearray(s.seal(s.bob, b"hello"))
    frame[-1] ^= 1
    with pytest.raises(ChannelRefused, match="decrypt"):
        open_frame(bytes(frame), s.channel, s.keys, s.description)
    with pytest.raises(ChannelRefused, match="bytes"):
        open_frame(b"\x00" * 200_000, s.channel, s.keys, s.description)
    with pytest.raises(ChannelRefused):
        open_frame(b"\xff\xff", s.channel, s.keys, s.description)


def test_only_the_newest_epochs_are_kept() -> None:
    keys = EpochKeys()
    for epoch in range(1, MAX_EPOCHS_KEPT + 3):
        keys.add(epoch, new_content_key())
    assert [epoch for epoch, _ in keys.items()] == list(range(3, MAX_EPOCHS_KEPT + 3))
    assert keys.current is not None and keys.current[0] == MAX_EPOCHS_KEPT + 2


def test_topics_are_valid_content_topics() -> None:
    parse_content_topic(community_content_topic("c" * 32))
    parse_content_topic(channel_content_topic("d" * 32))
