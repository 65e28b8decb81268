from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.direct import (
    CONTACT_REQUEST_PARTITIONS,
    MAX_SESSIONS_PER_CONTACT,
    MAX_UNVERIFIED_SENDERS,
    DirectError,
    DirectSessions,
    Envelope,
    contact_request_content_topic,
    contact_request_partition,
    conversation_content_topic,
    conversation_id,
    request_payload,
    verified_request_sender,
)
from chat.identity import ContactLink, Identity
from chat.proto import direct_pb2
from chat.waku.topics import parse_content_topic


def _text(sds: bytes) -> direct_pb2.DirectPayload:
    return direct_pb2.DirectPayload(sds_frame=sds)


def _pair() -> tuple[DirectSessions, DirectSessions]:
    return DirectSessions(Identity.create("Alice", 0)), DirectSessions(Identity.create("Bob", 0))


def test_conversation_id_and_topics_are_order_free_and_valid() -> None:
    a, b = bytes(32), bytes([1]) * 32
    assert conversation_id(a, b) == conversation_id(b, a) != conversation_id(a, a)
    parse_content_topic(conversation_content_topic(conversation_id(a, b)))
    topic = contact_request_content_topic(b)
    parse_content_topic(topic)
    assert 0 <= contact_request_partition(b) < CONTACT_REQUEST_PARTITIONS


def test_request_then_conversation_both_ways() -> None:
    alice, bob = _pair()
    bob_link = ContactLink.parse(bob.identity.contact_link())
    first = alice.seal_first(
        bob_link, request_payload(alice.identity.contact_link(), "hi", request_id="req-1")
    )
    assert first.olm_type == 0
    opened = bob.open(Envelope.decode(first.encode()))
    assert opened.new_session
    link, intro, request_id = verified_request_sender(opened)
    assert request_id == "req-1"
    assert link.chat_key == alice.identity.chat_key and intro == "hi"

    reply = bob.seal(alice.identity.identity_key, _text(b"frame-from-bob"))
    got = alice.open(Envelope.decode(reply.encode()))
    assert got.payload.sds_frame == b"frame-from-bob" and not got.new_session
    after = alice.seal(bob.identity.identity_key, _text(b"frame-from-alice"))
    assert after.olm_type == 1  # the ratchet moved on: normal messages now
    assert bob.open(after).payload.sds_frame == b"frame-from-alice"


def test_a_request_whose_link_names_someone_else_is_refused() -> None:
    alice, bob = _pair()
    mallory = DirectSessions(Identity.create("Mallory", 0))
    bob_link = ContactLink.parse(bob.identity.contact_link())
    # Mallory sends a request carrying Alice's (genuine, signed) link.
    forged = mallory.seal_first(bob_link, request_payload(alice.identity.contact_link(), "hi"))
    with pytest.raises(DirectError, match="someone other than its sender"):
        verified_request_sender(bob.open(forged))


def test_replays_garbage_and_strangers_are_errors_without_state_damage() -> None:
    alice, bob = _pair()
    bob_link = ContactLink.parse(bob.identity.contact_link())
    first = alice.seal_first(bob_link, request_payload(alice.identity.contact_link(), "hi"))
    bob.open(first)
    second = alice.seal(bob.identity.identity_key, _text(b"two"))
    assert bob.open(second).payload.sds_frame == b"two"
    with pytest.raises(DirectError):
        bob.open(second)  # a duplicate delivery cannot be decrypted twice
    stranger = DirectSessions(Identity.create("Eve", 0))
    with pytest.raises(DirectError):
        bob.open(Envelope(stranger.identity.identity_key, 1, b"\x03garbage"))
    with pytest.raises(DirectError):
        Envelope.decode(b"\xff\xff")
    third = alice.seal(bob.identity.identity_key, _text(b"three"))
    assert bob.open(third).payload.sds_frame == b"three"  # still works after the noise


def test_out_of_order_delivery_decrypts() -> None:
    alice, bob = _pair()
    bob_link = ContactLink.parse(bob.identity.contact_link())
    bob.open(alice.seal_first(bob_link, request_payload(alice.identity.contact_link(), "x")))
    bob.open(
        alice.open(bob.seal(alice.identity.identity_key, _text(b"ack")))
        and alice.seal(bob.identity.identity_key, _text(b"0"))
    )
    sealed = [alice.seal(bob.identity.identity_key, _text(str(i).encode())) for i in range(1, 6)]
    for env in reversed(sealed):
        assert bob.open(env).payload.sds_frame in {str(i).encode() for i in range(1, 6)}


def test_sessions_survive_pickling() -> None:
    alice, bob = _pair()
    bob_link = ContactLink.parse(bob.identity.contact_link())
    bob.open(alice.seal_first(bob_link, request_payload(alice.identity.contact_link(), "x")))
    key = bytes(range(32))
    restored = DirectSessions.from_pickle(bob.identity, bob.pickle(key), key)
    msg = alice.seal(bob.identity.identity_key, _text(b"after restart"))
    assert restored.open(msg).payload.sds_frame == b"after restart"


@given(st.binary(max_size=200))
def test_envelope_decoder_raises_only_direct_errors(data: bytes) -> None:
    try:
        Envelope.decode(data)
    except DirectError:
        pass


BOB_FOR_FUZZ = DirectSessions(Identity.create("Bob", 0))


@given(st.sampled_from([0, 1]), st.binary(max_size=300))
def test_opening_arbitrary_ciphertext_raises_only_direct_errors(olm_type: int, body: bytes) -> None:
    stranger_key = bytes(range(32))
    try:
        BOB_FOR_FUZZ.open(Envelope(stranger_key, olm_type, body))
    except DirectError:
        pass


def _request(sender: DirectSessions, recipient: DirectSessions, intro: str = "hi") -> Envelope:
    link = ContactLink.parse(recipient.identity.contact_link())
    return sender.seal_first(link, request_payload(sender.identity.contact_link(), intro))


def test_a_request_replayed_after_its_session_was_evicted_is_refused() -> None:
    alice, bob = _pair()
    first = _request(alice, bob)  # captured by anyone on the topic or in a store node
    assert bob.open(first).new_session
    for _ in range(MAX_SESSIONS_PER_CONTACT):  # re-sent or crossed requests
        bob.open(_request(alice, bob))
    with pytest.raises(DirectError, match="replayed"):
        bob.open(first)
    # The conversation is unharmed: what Bob sends next, Alice can read.
    reply = bob.seal(alice.identity.identity_key, _text(b"reply"))
    assert alice.open(reply).payload.sds_frame == b"reply"


def test_the_replay_guard_survives_pickling_and_old_pickles_still_load() -> None:
    alice, bob = _pair()
    first = _request(alice, bob)
    bob.open(first)
    key = bytes(range(32))
    for _ in range(MAX_SESSIONS_PER_CONTACT):
        bob.open(_request(alice, bob))
    restored = DirectSessions.from_pickle(bob.identity, bob.pickle(key), key)
    with pytest.raises(DirectError, match="replayed"):
        restored.open(first)
    assert restored.unverified == bob.unverified and restored.peer_used == bob.peer_used
    # The first format was {identity key hex: [session pickles]}; it still loads.
    old = {k.hex(): [s.pickle(key) for s in v] for k, v in bob.sessions.items()}
    from_old = DirectSessions.from_pickle(bob.identity, old, key)
    msg = alice.seal(bob.identity.identity_key, _text(b"after upgrade"))
    assert from_old.open(msg).payload.sds_frame == b"after upgrade"


def test_a_new_inbound_session_is_preferred_only_once_the_peer_uses_it_again() -> None:
    alice, bob = _pair()
    bob.open(_request(alice, bob))
    alice.open(bob.seal(alice.identity.identity_key, _text(b"accepted")))
    bob.open(alice.seal(bob.identity.identity_key, _text(b"thanks")))  # S1 carries traffic
    established = bob.sessions[alice.identity.identity_key][0].session_id
    # A second session from Alice (a re-sent request, say) arrives but is not used yet.
    assert bob.open(_request(alice, bob)).new_session
    assert bob.sessions[alice.identity.identity_key][0].session_id == established
    assert alice.open(bob.seal(alice.identity.identity_key, _text(b"still S1"))).payload
    # Alice sends again in the new session: now Bob moves there.
    newer = alice.sessions[bob.identity.identity_key][0].session_id
    assert bob.open(alice.seal(bob.identity.identity_key, _text(b"in S2"))).payload.sds_frame
    assert bob.sessions[alice.identity.identity_key][0].session_id == newer
    assert alice.open(bob.seal(alice.identity.identity_key, _text(b"S2 reply"))).payload


def test_a_request_failing_verification_leaves_no_session() -> None:
    alice, bob = _pair()
    mallory = DirectSessions(Identity.create("Mallory", 0))
    bob_link = ContactLink.parse(bob.identity.contact_link())
    forged = mallory.seal_first(bob_link, request_payload(alice.identity.contact_link(), "hi"))
    with pytest.raises(DirectError, match="someone other than its sender"):
        bob.verify_request(bob.open(forged))
    assert not bob.has_session(mallory.identity.identity_key)
    with pytest.raises(DirectError, match="replayed"):
        bob.open(forged)  # and the same bytes cannot open it again
    link, intro, _ = bob.verify_request(bob.open(_request(alice, bob)))
    assert link.identity_key == alice.identity.identity_key and intro == "hi"
    assert bob.has_session(alice.identity.identity_key)


def test_sessions_of_unverified_senders_are_bounded() -> None:
    bob = DirectSessions(Identity.create("Bob", 0))
    strangers = [
        DirectSessions(Identity.create(f"S{i}", 0)) for i in range(MAX_UNVERIFIED_SENDERS + 3)
    ]
    for s in strangers:
        bob.open(_request(s, bob))
    held = [s for s in strangers if bob.has_session(s.identity.identity_key)]
    assert held == strangers[-MAX_UNVERIFIED_SENDERS:]
    # A verified sender is no longer at risk of eviction.
    first_kept = held[0]
    bob.verify_request(bob.open(_request(first_kept, bob)))
    for _ in range(MAX_UNVERIFIED_SENDERS):
        bob.open(_request(DirectSessions(Identity.create("late", 0)), bob))
    assert bob.has_session(first_kept.identity.identity_key)


def test_a_request_intro_cannot_carry_terminal_escapes() -> None:
    alice, bob = _pair()
    hostile = "hi\x1b]0;owned\x07\n\u202egnp.exe 👋"
    _, intro, _ = bob.verify_request(bob.open(_request(alice, bob, hostile)))
    assert intro == "hi]0;owned\ngnp.exe 👋"


def _reload(sessions: DirectSessions, key: bytes) -> DirectSessions:
    """Every peer's row as the profile keeps them after saves, read back."""
    sessions.mark_all_changed()
    return DirectSessions.from_rows(sessions.identity, sessions.take_changes(key).rows, key)


def test_a_save_writes_only_the_peers_whose_sessions_moved() -> None:
    bob = DirectSessions(Identity.create("Bob", 0))
    key = bytes(range(32))
    strangers = [DirectSessions(Identity.create(f"S{i}", 0)) for i in range(40)]
    for stranger in strangers:
        bob.verify_request(bob.open(_request(stranger, bob)))
    bob.take_changes(key)
    # One more request, then one more message from a known sender: one row each.
    newcomer = DirectSessions(Identity.create("New", 0))
    bob.verify_request(bob.open(_request(newcomer, bob)))
    assert set(bob.take_changes(key).rows) == {newcomer.identity.identity_key.hex()}
    bob.open(_request(strangers[3], bob))
    assert set(bob.take_changes(key).rows) == {strangers[3].identity.identity_key.hex()}
    assert not bob.take_changes(key)
    # Forgetting a peer deletes its row.
    bob.forget(newcomer.identity.identity_key)
    changes = bob.take_changes(key)
    assert (changes.rows, changes.deleted) == ({}, [newcomer.identity.identity_key.hex()])


def test_per_peer_rows_keep_sessions_replay_guard_and_the_order_of_strangers() -> None:
    alice, bob = _pair()
    first = _request(alice, bob)
    bob.verify_request(bob.open(first))
    for _ in range(MAX_SESSIONS_PER_CONTACT):
        bob.open(_request(alice, bob))
    strangers = [DirectSessions(Identity.create(f"S{i}", 0)) for i in range(5)]
    for stranger in strangers:
        bob.open(_request(stranger, bob))
    bob.open(_request(strangers[0], bob))  # S0 is now the latest sender
    key = bytes(range(32))
    restored = _reload(bob, key)
    assert list(restored.unverified) == list(bob.unverified)
    assert list(restored.inbound_ids) == list(bob.inbound_ids)
    assert restored.peer_used == bob.peer_used
    with pytest.raises(DirectError, match="replayed"):
        restored.open(first)
    msg = alice.seal(bob.identity.identity_key, _text(b"after restart"))
    assert restored.open(msg).payload.sds_frame == b"after restart"
    # New entries after the restart go after the restored ones.
    late = DirectSessions(Identity.create("Late", 0))
    restored.open(_request(late, restored))
    assert list(restored.unverified)[-1] == late.identity.identity_key


def test_rows_with_an_unknown_format_or_the_wrong_key_are_refused() -> None:
    alice, bob = _pair()
    bob.open(_request(alice, bob))
    rows = bob.take_changes(bytes(32)).rows
    with pytest.raises(DirectError, match="cannot be opened"):
        DirectSessions.from_rows(bob.identity, rows, bytes(range(32)))
    future = {k: {**row, "version": 99} for k, row in rows.items()}
    with pytest.raises(DirectError, match="unknown direct session row format"):
        DirectSessions.from_rows(bob.identity, future, bytes(32))
