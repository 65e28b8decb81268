"""A channel message waits while a rotation is half-way through: the new description (a
kick's new epoch, a ban's new shard key) can arrive before the keys it names, and sealing in
that window must neither fail for good nor use a key the removed member still holds."""

from __future__ import annotations

import pytest
from harness.communities import NOW, new_community, person

from chat.communities.channel import new_content_key
from chat.messenger.community_state import ChannelCrypto, Community
from chat.messenger.conversation import SealFailed


def member_view() -> tuple[Community, ChannelCrypto]:
    owner = person("Olga")
    built = new_community(owner)
    community = Community(built.description, owner.key, protection=built.protection)
    community.keys.add(built.description.epoch, new_content_key())
    channel = built.description.channels[0].id
    return community, ChannelCrypto(community, channel, owner.identity)


def test_a_member_holding_the_current_keys_seals() -> None:
    _, crypto = member_view()
    assert crypto.seal(b"frame")


def test_a_new_epoch_named_before_its_key_arrives_makes_the_message_wait() -> None:
    community, crypto = member_view()
    community.description = community.description.next(
        NOW + 1, epoch=community.description.epoch + 1
    )
    with pytest.raises(SealFailed, match="new content key") as refused:
        crypto.seal(b"frame")
    assert not refused.value.permanent
    community.keys.add(community.description.epoch, new_content_key())
    assert crypto.seal(b"frame")


def test_a_new_shard_key_named_before_its_pair_arrives_makes_the_message_wait() -> None:
    community, crypto = member_view()
    community.protection = None  # the ban's description came; the new key pair has not
    with pytest.raises(SealFailed, match="new shard key") as refused:
        crypto.seal(b"frame")
    assert not refused.value.permanent
