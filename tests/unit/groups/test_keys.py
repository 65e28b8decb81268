"""A group's Megolm sessions: sealing and reading, replays and tampering refused, a member
added later reading only what follows, who needs our key, and the rotation policy."""

from __future__ import annotations

import pytest
import vodozemac

from chat.groups.keys import GroupKeys, NoSession, OutboundSession, Refused, RotationPolicy

POLICY = RotationPolicy(max_messages=3, max_age=100.0, reshare_after=10.0)
KEY = b"k" * 32


def pair() -> tuple[GroupKeys, GroupKeys]:
    return GroupKeys("g" * 32, "alice", POLICY), GroupKeys("g" * 32, "bob", POLICY)


def share(sender: GroupKeys, receiver: GroupKeys, session: OutboundSession) -> None:
    key = session.session.session_key.to_base64()
    receiver.add_inbound(session.id, key, sender.own, b"\x01" * 32, 0.0)


def test_a_message_reads_once_and_a_replay_or_a_tampered_copy_is_refused() -> None:
    alice, bob = pair()
    session, reason = alice.session_for(content=True, now=0.0)
    assert reason == "the first message"
    share(alice, bob, session)
    ciphertext = alice.encrypt(session, "m1", b"hello", content=True)
    opened = bob.decrypt(session.id, ciphertext)
    assert (opened.owner, opened.plaintext, opened.index) == ("alice", b"hello", 0)
    with pytest.raises(Refused, match="replayed"):
        bob.decrypt(session.id, ciphertext)
    tampered = bytearray(alice.encrypt(session, "m2", b"again", content=True))
    tampered[6] ^= 1
    with pytest.raises(Refused, match="tampered"):
        bob.decrypt(session.id, bytes(tampered))
    with pytest.raises(Refused, match="malformed"):
        bob.decrypt(session.id, b"\x00\x01")
    with pytest.raises(NoSession):
        bob.decrypt("unknown", ciphertext)


def test_a_member_given_the_key_later_reads_only_what_follows() -> None:
    alice, bob = pair()
    session, _ = alice.session_for(content=True, now=0.0)
    early = alice.encrypt(session, "m1", b"before you joined", content=True)
    share(alice, bob, session)  # the key at its current index
    later = alice.encrypt(session, "m2", b"after", content=True)
    with pytest.raises(NoSession, match="before we had"):
        bob.decrypt(session.id, early)
    assert bob.decrypt(session.id, later).plaintext == b"after"


def test_a_session_claimed_by_a_second_member_or_with_a_wrong_id_is_refused() -> None:
    alice, bob = pair()
    session, _ = alice.session_for(content=True, now=0.0)
    key = session.session.session_key.to_base64()
    # Mallory, who holds Alice's key as every member does, passes it on as hers first.
    assert bob.add_inbound(session.id, key, "mallory", b"\x02" * 32, 0.0)
    share(alice, bob, session)  # Alice's own claim replaces it: no frame named Mallory
    ciphertext = alice.encrypt(session, "m1", b"hello", content=True)
    opened = bob.decrypt(session.id, ciphertext)
    assert opened.owner == "alice" and opened.owner_identity_key == b"\x01" * 32
    bob.confirm(session.id, "mallory")  # a frame naming someone else settles nothing
    assert bob.add_inbound(session.id, key, "mallory", b"\x02" * 32, 1.0)
    share(alice, bob, session)
    bob.confirm(session.id, "alice")  # a frame of it named its owner: settled
    with pytest.raises(Refused, match="already owns"):
        bob.add_inbound(session.id, key, "mallory", b"\x02" * 32, 1.0)
    stored = bob.row(session.id, KEY)
    assert stored is not None and stored[1]["confirmed"] is True
    with pytest.raises(Refused, match="another session"):
        bob.add_inbound("other-id", key, "alice", b"\x01" * 32, 1.0)
    with pytest.raises(Refused, match="does not decode"):
        bob.add_inbound("x", "not a key", "alice", b"\x01" * 32, 1.0)
    with pytest.raises(Refused, match="our own"):
        alice.add_inbound(session.id, key, "alice", b"\x01" * 32, 1.0)


def test_rotation_after_n_messages_after_t_and_when_someone_who_had_the_key_left() -> None:
    alice, _ = pair()
    first, _ = alice.session_for(content=True, now=0.0)
    for n in range(3):
        assert alice.session_for(content=True, now=1.0) == (first, None)
        alice.encrypt(first, f"m{n}", b"x", content=True)
    second, reason = alice.session_for(content=True, now=2.0)
    assert second is not first and reason == "3 messages sent with it"
    assert alice.is_own(first.id) and alice.is_own(second.id)
    third, reason = alice.session_for(content=True, now=200.0)
    assert reason == "a week old" and third is not second
    alice.shared(third, ["bob", "carol"], 200.0)
    alice.departed(["dave"])  # never had it: no reason to rotate
    assert alice.session_for(content=True, now=201.0) == (third, None)
    alice.departed(["carol"])
    assert alice.session_for(content=False, now=202.0) == (third, None)  # a sync keeps it
    fourth, reason = alice.session_for(content=True, now=203.0)
    assert fourth is not third and reason == "carol no longer in the group"


def test_who_needs_our_key_and_confirmation_by_acknowledgement() -> None:
    alice, _ = pair()
    session, _ = alice.session_for(content=True, now=0.0)
    assert session.needs_key(["bob", "carol"], 0.0, 10.0) == ["bob", "carol"]
    alice.shared(session, ["bob", "carol"], 0.0)
    alice.encrypt(session, "m1", b"x", content=True)
    assert session.needs_key(["bob", "carol"], 5.0, 10.0) == []
    alice.acknowledged("bob", "m1")
    alice.acknowledged("carol", "someone else's message")
    assert session.needs_key(["bob", "carol"], 10.0, 10.0) == ["carol"]


def test_sessions_survive_a_restart_with_their_counters_and_replay_guard() -> None:
    alice, bob = pair()
    session, _ = alice.session_for(content=True, now=0.0)
    share(alice, bob, session)
    alice.shared(session, ["bob"], 0.0)
    message = alice.encrypt(session, "m1", b"hi", content=True)
    bob.decrypt(session.id, message)
    restored_alice, restored_bob = pair()
    for keys, restored in ((alice, restored_alice), (bob, restored_bob)):
        changed, _ = keys.take_changed()
        for session_id in changed:
            row = keys.row(session_id, KEY)
            assert row is not None
            restored.restore(session_id, row[0], row[1], KEY)
    assert restored_alice.outbound is not None and restored_alice.outbound.sent == 1
    assert restored_alice.outbound.shared_at == {"bob": 0.0}
    with pytest.raises(Refused, match="replayed"):
        restored_bob.decrypt(session.id, message)
    follow = restored_alice.encrypt(restored_alice.outbound, "m2", b"after", content=True)
    assert restored_bob.decrypt(session.id, follow).plaintext == b"after"
    assert isinstance(restored_alice.outbound.session, vodozemac.GroupSession)
