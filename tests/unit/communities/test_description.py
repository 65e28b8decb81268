"""The signed, versioned description and the book that keeps the newest valid one: forged,
older, oversized and wrongly signed versions are ignored with a log line."""

from __future__ import annotations

import logging

import pytest
from harness.communities import NOW, new_community, person, with_members

from chat.communities.book import DescriptionBook
from chat.communities.description import (
    MAX_DESCRIPTION_BYTES,
    DescriptionError,
    JoinPolicy,
    Member,
    community_id_of,
    decode_description,
    sign_description,
)
from chat.communities.moderation import add_member, ban, edit, kick
from chat.communities.roles import Role
from chat.communities.signer import OwnerKey
from chat.proto import community_pb2
from chat.waku.protected import ShardKeyPair


def test_the_id_is_derived_from_the_owner_key_and_survives_a_round_trip() -> None:
    alice = person("alice")
    community = new_community(alice)
    description = decode_description(community.description.signed)
    assert description.id == community_id_of(community.owner_key.chat_key)
    assert len(description.id) == 32
    assert description.name == "Test community"
    assert description.owner == alice.key
    assert description.role_of(alice.key) is Role.OWNER
    assert description.members[0].contact_link == alice.link
    assert [channel.name for channel in description.channels] == ["general", "random"]
    assert description.join_policy is JoinPolicy.APPROVAL
    assert (description.cluster_id, description.shard) == (16, 200)
    assert description.protection_key == community.protection.public_key.to_bytes()
    assert description.signer == community.owner_key.chat_key
    # Two communities of the same person are two ids.
    assert new_community(alice).description.id != description.id


def test_a_forged_signature_is_refused() -> None:
    community = new_community(person("alice"))
    outer = community_pb2.Signed.FromString(community.description.signed)
    body = community_pb2.Description.FromString(outer.body)
    body.name = "Forged"
    outer.body = body.SerializeToString()
    with pytest.raises(DescriptionError, match="bad signature"):
        decode_description(outer.SerializeToString())


def test_an_oversized_description_is_refused_unread() -> None:
    with pytest.raises(DescriptionError, match="bytes"):
        decode_description(b"\x00" * (MAX_DESCRIPTION_BYTES + 1))


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(DescriptionError):
        decode_description(b"\xff\xff\xff")


def test_the_book_keeps_the_newest_and_logs_what_it_ignores(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    version_1 = community.description
    version_2 = with_members(community, [bob])
    book = DescriptionBook()
    assert book.offer(version_2.signed).accepted == version_2
    with caplog.at_level(logging.INFO, logger="chat.communities.book"):
        older = book.offer(version_1.signed)
    assert older.accepted is None and "older" in older.reason
    assert "older description" in caplog.text
    assert book.get(version_2.id) == version_2
    assert book.offer(version_2.signed).reason == "a copy of the description we hold"


def test_a_description_signed_by_a_stranger_is_ignored() -> None:
    alice, mallory = person("alice"), person("mallory")
    community = new_community(alice)
    book = DescriptionBook()
    book.offer(community.description.signed)
    renamed = edit(community.description, alice.key, NOW + 1, name="Mallory's").description
    forged = sign_description(mallory.identity, renamed)
    result = book.offer(forged.signed)
    assert result.accepted is None
    assert "not signed by the owner or an admin" in result.reason
    # A stranger's own owner key makes another community, not a new version of this one.
    stranger_key = OwnerKey.generate()
    result = book.offer(sign_description(stranger_key, renamed).signed, community.description.id)
    assert result.accepted is None
    assert book.get(community.description.id) == community.description


def test_an_admin_may_edit_but_not_change_the_admins() -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    community = new_community(alice)
    with_members(community, [bob, carol], admins=(bob,))
    book = DescriptionBook()
    book.offer(community.description.signed)
    kicked = kick(community.description, bob.key, carol.key, NOW + 100).description
    by_admin = sign_description(bob.identity, kicked)
    assert book.offer(by_admin.signed).accepted == by_admin
    # An admin who grants admin (only the owner may) signs a version the book refuses.
    promoted = tuple(
        Member(m.chat_key, m.display_name, Role.ADMIN) if m.chat_key == alice.key else m
        for m in by_admin.members
    )
    carol_admin = by_admin.next(NOW + 200, members=(*promoted,))
    with pytest.raises(DescriptionError, match="exactly one owner"):
        sign_description(bob.identity, carol_admin)
    grant = by_admin.next(
        NOW + 200, members=(*by_admin.members, Member(carol.key, "carol", Role.ADMIN))
    )
    result = book.offer(sign_description(bob.identity, grant).signed)
    assert result.accepted is None and "changes the owner or the admins" in result.reason
    assert book.get(community.description.id) == by_admin


def test_a_member_cannot_sign_a_new_version() -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    with_members(community, [bob])
    book = DescriptionBook()
    book.offer(community.description.signed)
    renamed = community.description.next(NOW + 100, name="Bob's now")
    result = book.offer(sign_description(bob.identity, renamed).signed)
    assert result.accepted is None and "owner or an admin" in result.reason


def test_a_first_description_signed_by_an_admin_is_not_enough() -> None:
    alice, bob = person("alice"), person("bob")
    community = new_community(alice)
    with_members(community, [bob], admins=(bob,))
    renamed = community.description.next(NOW + 100, name="Renamed")
    result = DescriptionBook().offer(sign_description(bob.identity, renamed).signed)
    assert result.accepted is None and "owner key" in result.reason


def test_only_the_owner_moves_the_shard_or_changes_its_key_outside_a_ban() -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    community = new_community(alice)
    with_members(community, [bob, carol], admins=(bob,))
    held = community.description
    book = DescriptionBook()
    book.offer(held.signed)
    other_key = ShardKeyPair.generate().public_key.to_bytes()
    refused = {
        "another shard": held.next(NOW + 100, shard=held.shard + 1),
        "another cluster": held.next(NOW + 100, cluster_id=held.cluster_id + 1),
        "a new key without a ban": held.next(NOW + 100, protection_key=other_key),
        "no key at all": held.next(NOW + 100, protection_key=b""),
        "a kick with a new key": held.next(
            NOW + 100,
            members=tuple(m for m in held.members if m.chat_key != carol.key),
            epoch=held.epoch + 1,
            protection_key=other_key,
        ),
    }
    for what, changed in refused.items():
        result = book.offer(sign_description(bob.identity, changed).signed)
        assert result.accepted is None, what
        assert "only the owner" in result.reason, what
        assert book.get(held.id) == held
    # The owner may do each of them; an admin's ban brings the new key it must.
    assert book.offer(community.sign(refused["another shard"]).signed).accepted is not None
    moved = book.get(held.id)
    assert moved is not None
    banned = sign_description(bob.identity, ban(moved, bob.key, carol.key, NOW + 200).description)
    assert book.offer(banned.signed).accepted == banned
    assert banned.protection_key != moved.protection_key


def test_two_moderators_signing_the_same_version_converge_in_either_arrival_order() -> None:
    # Alice (the owner, with her chat key) and Bob (an admin) each sign version n+1 at once,
    # from the same version n: every member must end with the same one, whichever came first.
    alice, bob, carol, dave = person("alice"), person("bob"), person("carol"), person("dave")
    community = new_community(alice)
    held = with_members(community, [bob, carol], admins=(bob,))
    by_bob = sign_description(bob.identity, kick(held, bob.key, carol.key, NOW + 100).description)
    by_alice = sign_description(
        alice.identity, edit(held, alice.key, NOW + 101, name="Renamed").description
    )
    also_bob = sign_description(
        bob.identity, add_member(held, bob.key, dave.as_member(), NOW + 102).description
    )
    for rivals in ((by_bob, by_alice), (by_bob, also_bob), (by_alice, also_bob)):
        ends = []
        for order in (rivals, rivals[::-1]):
            book = DescriptionBook()
            book.offer(held.signed)
            for description in order:
                book.offer(description.signed)
            ends.append(book.get(held.id))
        assert ends[0] == ends[1] and ends[0] in rivals
    # A rival that its signer could not sign from version n never wins the tie.
    grant = held.next(NOW + 103, members=(*held.members, Member(dave.key, "dave", Role.ADMIN)))
    forged = sign_description(bob.identity, grant)
    for order in ((by_bob, forged), (forged, by_bob)):
        book = DescriptionBook()
        book.offer(held.signed)
        for description in order:
            book.offer(description.signed)
        assert book.get(held.id) == by_bob
