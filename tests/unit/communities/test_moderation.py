"""Roles and moderation: who may accept, kick, ban, manage channels, edit and grant admin;
what each step does to the description and what it rotates."""

from __future__ import annotations

import pytest
from harness.communities import NOW, new_community, person, with_members

from chat.communities.book import DescriptionBook
from chat.communities.description import JoinPolicy, sign_description
from chat.communities.moderation import (
    ModerationError,
    add_channel,
    add_member,
    ban,
    edit,
    kick,
    leave,
    remove_channel,
    set_role,
)
from chat.communities.redo import lost_changes
from chat.communities.roles import Action, PermissionRefused, Role, allowed, check
from chat.waku.protected import ShardPublicKey


@pytest.mark.parametrize(
    ("actor", "action", "subject", "ok"),
    [
        (Role.OWNER, Action.KICK, Role.ADMIN, True),
        (Role.ADMIN, Action.KICK, Role.MEMBER, True),
        (Role.ADMIN, Action.KICK, Role.ADMIN, False),
        (Role.ADMIN, Action.BAN, Role.OWNER, False),
        (Role.OWNER, Action.BAN, Role.OWNER, False),
        (Role.MEMBER, Action.KICK, Role.MEMBER, False),
        (Role.ADMIN, Action.ANSWER_REQUEST, None, True),
        (Role.MEMBER, Action.ANSWER_REQUEST, None, False),
        (Role.ADMIN, Action.EDIT_CHANNELS, None, True),
        (Role.ADMIN, Action.EDIT_DESCRIPTION, None, True),
        (Role.ADMIN, Action.SET_ROLE, Role.MEMBER, False),
        (Role.OWNER, Action.SET_ROLE, Role.MEMBER, True),
        (Role.MEMBER, Action.SEND, None, True),
        (None, Action.SEND, None, False),
    ],
)
def test_the_role_table(actor: Role | None, action: Action, subject: Role | None, ok: bool) -> None:
    assert allowed(actor, action, subject) is ok


def test_refusals_say_who_may() -> None:
    with pytest.raises(PermissionRefused, match="only the admin or owner may remove members"):
        check(Role.MEMBER, Action.KICK, Role.MEMBER)
    with pytest.raises(PermissionRefused, match="only the owner may grant or revoke admin"):
        check(Role.ADMIN, Action.SET_ROLE, Role.MEMBER)


def test_kick_starts_a_new_epoch_and_ban_also_a_new_protection_key() -> None:
    alice, bob, carol, dave = person("alice"), person("bob"), person("carol"), person("dave")
    community = new_community(alice)
    description = with_members(community, [bob, carol, dave])
    kicked = kick(description, alice.key, bob.key, NOW + 1)
    assert kicked.new_epoch and kicked.new_protection is None
    assert kicked.description.epoch == description.epoch + 1
    assert kicked.description.role_of(bob.key) is None
    assert kicked.description.protection_key == description.protection_key
    signed = community.sign(kicked.description)
    banned = ban(signed, alice.key, carol.key, NOW + 2)
    assert banned.new_epoch and banned.new_protection is not None
    assert banned.description.epoch == signed.epoch + 1
    assert carol.key in banned.description.banned
    new_key = ShardPublicKey.from_bytes(banned.description.protection_key)
    assert new_key == banned.new_protection.public_key
    assert new_key.to_bytes() != description.protection_key
    # The banned cannot be added back by a join acceptance.
    with pytest.raises(ModerationError, match="banned"):
        add_member(community.sign(banned.description), alice.key, carol.as_member(), NOW + 3)


def test_an_admin_moderates_members_but_not_admins_and_their_version_is_accepted() -> None:
    alice, bob, carol, dave = person("alice"), person("bob"), person("carol"), person("dave")
    community = new_community(alice)
    description = with_members(community, [bob, carol, dave], admins=(bob, carol))
    assert description.role_of(bob.key) is Role.ADMIN
    assert description.member(bob.key) is not None
    assert description.member(bob.key).contact_link == bob.link  # type: ignore[union-attr]
    assert set(description.moderators()) == {alice.key, bob.key, carol.key}
    with pytest.raises(PermissionRefused, match="only the owner may"):
        kick(description, bob.key, carol.key, NOW + 1)
    with pytest.raises(PermissionRefused, match="nobody may"):
        ban(description, bob.key, alice.key, NOW + 1)
    book = DescriptionBook()
    book.offer(description.signed)
    by_admin = sign_description(
        bob.identity, ban(description, bob.key, dave.key, NOW + 2).description
    )
    assert book.offer(by_admin.signed).accepted == by_admin


def test_channels_and_edits() -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    description = with_members(community, [bob])
    with pytest.raises(PermissionRefused):
        add_channel(description, bob.key, "mine", NOW)
    added = community.sign(add_channel(description, alice.key, "news", NOW).description)
    assert [c.name for c in added.channels] == ["general", "random", "news"]
    with pytest.raises(ModerationError, match="already"):
        add_channel(added, alice.key, "news", NOW)
    news = added.channels[-1].id
    removed = remove_channel(added, alice.key, news, NOW).description
    assert removed.channel(news) is None
    edited = edit(added, alice.key, NOW, about="new about", join_policy=JoinPolicy.OPEN)
    assert edited.description.about == "new about"
    assert edited.description.join_policy is JoinPolicy.OPEN
    with pytest.raises(ModerationError, match="nothing"):
        edit(added, alice.key, NOW)


def test_roles_are_granted_and_revoked_by_the_owner_only() -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    description = with_members(community, [bob], admins=(bob,))
    revoked = set_role(description, alice.key, bob.key, Role.MEMBER, NOW).description
    assert revoked.role_of(bob.key) is Role.MEMBER
    assert revoked.member(bob.key).contact_link == ""  # type: ignore[union-attr]
    with pytest.raises(ModerationError, match="cannot be granted"):
        set_role(description, alice.key, bob.key, Role.OWNER, NOW)
    with pytest.raises(ModerationError, match="already"):
        set_role(description, alice.key, bob.key, Role.ADMIN, NOW)


def test_a_member_leaves_and_the_owner_cannot() -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    description = with_members(community, [bob])
    outcome = leave(description, bob.key, NOW)
    assert outcome.new_epoch and outcome.description.role_of(bob.key) is None
    with pytest.raises(ModerationError, match="owner cannot leave"):
        leave(description, alice.key, NOW)


def test_banning_something_that_is_not_a_chat_key_is_a_clear_error() -> None:
    community = new_community(person("alice"))
    with pytest.raises(ModerationError, match="chat key"):
        ban(community.description, community.owner.key, "0", NOW)


def test_admin_is_not_granted_without_a_contact_link_of_theirs() -> None:
    # An admin without a contact link in the description gets no join requests, and the
    # keys they send after a kick are refused by every member (nobody can tell the Olm
    # sender is them): granting it so would leave the next epoch with no reader.
    alice, bob = person("alice"), person("bob")
    description = with_members(new_community(alice), [bob])
    with pytest.raises(ModerationError, match="contact link"):
        set_role(description, alice.key, bob.key, Role.ADMIN, NOW)
    granted = set_role(description, alice.key, bob.key, Role.ADMIN, NOW, contact_link=bob.link)
    assert granted.description.member(bob.key).contact_link == bob.link  # type: ignore[union-attr]


def test_what_a_moderator_whose_version_lost_makes_again() -> None:
    alice, bob, carol, dave, erin, frank = (
        person(n) for n in ("alice", "bob", "carol", "dave", "erin", "frank")
    )
    community = new_community(alice)
    before = with_members(community, [bob, carol, dave, erin], admins=(bob,))
    # Bob kicks Carol, bans Dave and adds Frank in one lost version; Alice's kept version
    # removed Erin and renamed the community.
    ours = kick(before, bob.key, carol.key, NOW + 1).description
    ours = ban(ours, bob.key, dave.key, NOW + 1).description
    ours = add_member(ours, bob.key, frank.as_member(), NOW + 1).description
    kept = kick(before, alice.key, erin.key, NOW + 1).description
    lost = lost_changes(before, ours, kept)
    assert lost.removed == (carol.key,)
    assert lost.banned == (dave.key,)
    assert [m.chat_key for m in lost.added] == [frank.key]
    assert not lost_changes(before, kept, kept)
