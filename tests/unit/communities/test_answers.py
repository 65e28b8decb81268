"""Join requests and answers on the wire: an acceptance counts only when the owner key or an
owner's or admin's chat key signed it; the keys an acceptance carries are checked."""

from __future__ import annotations

import logging

import pytest
from harness.communities import NOW, new_community, person, with_members

from chat.communities.answers import (
    JoinWireError,
    MemberKeys,
    Request,
    accept_answer,
    check_answer,
    decode_answer,
    sign_answer,
)
from chat.communities.channel import new_content_key
from chat.identity import ContactLink
from chat.proto import community_pb2

REQUEST_ID = "a" * 32


def test_a_request_round_trips_with_the_requesters_link() -> None:
    bob = person("bob")
    request = Request(
        REQUEST_ID, "c" * 32, ContactLink.parse(bob.link), bob.link, "hi", NOW, NOW + 60
    )
    decoded = Request.decode(request.encode())
    assert decoded == request and decoded.requester == bob.key


def test_a_request_with_a_bad_link_or_ids_is_refused() -> None:
    bob = person("bob")
    request = Request(REQUEST_ID, "c" * 32, ContactLink.parse(bob.link), "chinwag:xx", "", NOW, NOW)
    with pytest.raises(JoinWireError, match="contact link"):
        Request.decode(request.encode())
    bad_ids = Request("nope", "c" * 32, ContactLink.parse(bob.link), bob.link, "", NOW, NOW)
    with pytest.raises(JoinWireError, match="ids"):
        Request.decode(bad_ids.encode())


def test_answers_by_the_owner_key_the_owner_and_an_admin_count() -> None:
    alice, bob, carol, dave = person("alice"), person("bob"), person("carol"), person("dave")
    community = new_community(alice)
    description = with_members(community, [bob, carol], admins=(bob,))
    for signer in (community.owner_key, alice.identity, bob.identity):
        answer = sign_answer(
            signer, REQUEST_ID, description.id, dave.key, accepted=True, reason="", now=NOW
        )
        check_answer(answer, description)
        assert accept_answer(answer.signed, description) == answer


def test_an_acceptance_not_signed_by_an_owner_or_admin_is_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob, mallory, dave = person("alice"), person("bob"), person("mallory"), person("dave")
    community = new_community(alice)
    description = with_members(community, [bob])
    for signer in (bob.identity, mallory.identity):
        answer = sign_answer(
            signer, REQUEST_ID, description.id, dave.key, accepted=True, reason="", now=NOW
        )
        with caplog.at_level(logging.INFO, logger="chat.communities.answers"):
            assert accept_answer(answer.signed, description) is None
        assert "not signed by the owner or an admin" in caplog.text


def test_a_tampered_answer_does_not_verify() -> None:
    alice, dave = person("alice"), person("dave")
    description = new_community(alice).description
    answer = sign_answer(
        alice.identity, REQUEST_ID, description.id, dave.key, accepted=False, reason="", now=NOW
    )
    outer = community_pb2.Signed.FromString(answer.signed)
    body = community_pb2.JoinAnswer.FromString(outer.body)
    body.accepted = True
    outer.body = body.SerializeToString()
    with pytest.raises(JoinWireError, match="bad signature"):
        decode_answer(outer.SerializeToString())


def test_an_answer_for_another_community_is_refused() -> None:
    alice, dave = person("alice"), person("dave")
    community, other = new_community(alice), new_community(alice)
    answer = sign_answer(
        community.owner_key, REQUEST_ID, other.description.id, dave.key,
        accepted=True, reason="", now=NOW,
    )  # fmt: skip
    with pytest.raises(JoinWireError, match="another community"):
        check_answer(answer, community.description)


def test_member_keys_carry_a_checked_description() -> None:
    alice = person("alice")
    community, other = new_community(alice), new_community(alice)
    keys = MemberKeys(
        community.description.id, 1, new_content_key(), community.protection.secret_bytes(),
        community.description.signed,
    )  # fmt: skip
    decoded = MemberKeys.decode(keys.encode())
    assert decoded == keys
    assert decoded.checked_description() == community.description
    wrong = MemberKeys(
        community.description.id, 1, new_content_key(), b"", other.description.signed
    )
    with pytest.raises(JoinWireError, match="another community"):
        wrong.checked_description()
    with pytest.raises(JoinWireError, match="malformed keys"):
        MemberKeys.decode(MemberKeys(community.description.id, 1, b"short", b"", b"").encode())
