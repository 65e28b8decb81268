from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.direct import (
    CONTACT_REQUEST_PARTITIONS,
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
    first = alice.seal_first(bob_link, request_payload(alice.identity.contact_link(), "hi"))
    assert first.olm_type == 0
    opened = bob.open(Envelope.decode(first.encode()))
    assert opened.new_session
    link, intro = verified_request_sender(opened)
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
