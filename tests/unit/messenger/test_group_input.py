"""Private groups under bad input, on the fake network: a forged or unauthorised membership
change, an invitation from a stranger, a message from a removed member, a tampered or
replayed envelope. Each is refused, shows nothing, and is logged."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio
from harness.fake_groups import all_see, group_messages, group_rejections, members_of, texts
from harness.fake_messengers import Peers, Running, befriend, group_of
from harness.waiting import wait_until

from chat import events as ev
from chat.groups import changes as ch
from chat.groups.log import MAX_IGNORED_PER_AUTHOR, MAX_LOG_ENTRIES
from chat.groups.wire import GroupEnvelope, Share, group_content_topic
from chat.identity import ContactLink
from chat.proto import direct_pb2, group_pb2
from chat.waku.message import WakuMessage

EVERYONE = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}


async def three(peers: Peers) -> tuple[Running, Running, Running, str]:
    alice, bob, carol = [await peers.start(n) for n in ("alice", "bob", "carol")]
    group_id = await group_of(alice, bob, carol)
    await all_see(group_id, EVERYONE, alice, bob, carol)
    for running in (alice, bob, carol):
        running.drain()
    return alice, bob, carol, group_id


async def test_a_change_by_a_member_who_is_no_admin_and_a_forged_one_are_ignored_and_logged(
    peers: Peers, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob, carol, group_id = await three(peers)
    group = bob.messenger._groups.groups.get(group_id)  # Bob turns rogue
    assert group is not None
    alice_key = alice.messenger.identity().chat_key
    bob_identity = bob.messenger.me
    unauthorised = ch.removed(
        bob_identity, group_id, group.log.next_lamport(), alice.messenger.me.chat_key, 1.0
    )
    signed = group_pb2.SignedChange.FromString(
        ch.renamed(bob_identity, group_id, group.log.next_lamport(), "Bob's now", 1.0).signed
    )
    body = group_pb2.ChangeBody.FromString(signed.body)
    body.author = alice.messenger.me.chat_key  # claims to be Alice's
    forged = replace(
        unauthorised,
        id="f" * 32,
        signed=group_pb2.SignedChange(
            body=body.SerializeToString(), signature=signed.signature
        ).SerializeToString(),
    )
    async with bob.messenger._lock:
        await bob.messenger._groups.relay(group, unauthorised)
        await bob.messenger._groups.relay(group, forged)
    await trio.sleep(5)
    for running in (alice, carol):
        reasons = group_rejections(running)
        assert any("is ignored" in r and "not an admin" in r for r in reasons), reasons
        assert any("bad signature" in r for r in reasons), reasons
        view = await running.messenger.group(group_id)
        assert view.name == "Friends" and alice_key in view.admins
        assert await members_of(running, group_id) == EVERYONE
        assert not [
            t for t in await texts(running, group_id, "system") if "Bob" in t and "now" in t
        ]
    assert "is ignored: a 'removed' change by a member who is not an admin" in caplog.text


async def test_a_tampered_and_a_replayed_envelope_are_refused_and_show_nothing(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, _, group_id = await three(peers)
    alice.node.lose_next = 1  # Bob gets it from us below: tampered first
    await alice.messenger.send_text(group_id, "the real one")
    await trio.testing.wait_all_tasks_blocked()
    topic, original = group_messages(alice)[-1]
    envelope = GroupEnvelope.decode(original.payload)
    ciphertext = bytearray(envelope.ciphertext)
    ciphertext[-80] ^= 0x40  # inside the encrypted part, before the MAC and signature
    tampered = replace(envelope, ciphertext=bytes(ciphertext))
    bob.node.deliver(topic, replace(original, payload=tampered.encode()))
    await trio.sleep(0.1)
    bob.node.deliver(topic, original)  # the real one reads
    later = original.timestamp + 1_000_000  # another Waku hash: not a copy, a replay
    bob.node.deliver(topic, replace(original, timestamp=later))
    await trio.sleep(2)
    reasons = group_rejections(bob)
    assert any("tampered" in r for r in reasons), reasons
    assert any("replayed" in r for r in reasons), reasons
    assert (await texts(bob, group_id)).count("the real one") == 1


async def test_a_message_from_a_removed_member_is_refused_and_logged(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol, group_id = await three(peers)
    await carol.messenger.send_text(group_id, "while a member")
    await wait_until(lambda: _has(bob, group_id, "while a member"))
    await alice.messenger.remove_group_member(group_id, carol.messenger.identity().chat_key)
    await all_see(group_id, {**EVERYONE, "Carol": "removed"}, alice, bob, carol)
    group = carol.messenger._groups.groups.get(group_id)  # Carol's client ignores it
    assert group is not None and group.keys.outbound is not None
    channel = await carol.messenger._sending._channels.get(group_id)
    content = group_pb2.GroupContent(
        message=direct_pb2.ChatMessage(id="a" * 32, text="still here").SerializeToString()
    ).SerializeToString()
    frame = channel.wrap(content, "a" * 32, int(trio.current_time() * 1000))
    session = group.keys.outbound
    ciphertext = group.keys.encrypt(session, frame.message_id, frame.encode(), content=True)
    payload = GroupEnvelope(session.id, ciphertext).encode()
    message = WakuMessage(payload, group_content_topic(group_id), timestamp=1)
    bob.drain()
    bob.node.deliver(bob.messenger.pubsub_topic, message)
    await trio.sleep(2)
    reasons = group_rejections(bob)
    assert any("who is not a member of this group" in r for r in reasons), reasons
    assert "still here" not in await texts(bob, group_id)


async def test_an_invitation_from_someone_who_is_not_a_contact_is_refused(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, _, group_id = await three(peers)
    mallory = await peers.start("mallory")  # has Bob's link, is not his contact
    group = alice.messenger._groups.groups.get(group_id)
    assert group is not None
    body = group_pb2.GroupInviteBody(invite_id="b" * 32, group_id=group_id)
    for change in group.log.changes():
        body.log.add().ParseFromString(change.signed)
    link = ContactLink.parse(bob.messenger.identity().contact_link)
    async with mallory.messenger._lock:
        envelope = mallory.messenger._olm.seal_to(link, direct_pb2.DirectPayload(group_invite=body))
    bob.drain()
    topic = bob.messenger._contacts_flow.request_topic
    bob.node.deliver(bob.messenger.pubsub_topic, WakuMessage(envelope.encode(), topic, 1))
    await trio.sleep(1)
    assert "a group invitation from someone who is not a contact" in bob.rejections()
    assert await bob.messenger.invites() == [
        i for i in await bob.messenger.invites() if i.id != "b" * 32
    ]


async def _has(running: Running, group_id: str, text: str) -> bool:
    return text in await texts(running, group_id)


async def test_a_member_cannot_fill_the_log_with_changes_that_do_nothing(
    peers: Peers, autojump_clock: Any
) -> None:
    """Bob (no admin) and Erin (not in the group) send changes that break the rules; were they
    all kept, Alice's log would be full and take no change again (not even Bob's removal).
    A few of Bob's are kept (crossed changes are legitimate), none of Erin's."""
    alice, bob, carol, group_id = await three(peers)
    erin, dave = await peers.start("erin"), await peers.start("dave")
    await befriend(alice, dave)
    group = alice.messenger._groups.groups.get(group_id)
    assert group is not None
    lamport = group.log.next_lamport()
    async with alice.messenger._lock:  # as the pipeline hands them over, from frames
        for n in range(MAX_LOG_ENTRIES):
            for rogue in (bob, erin):
                change = ch.renamed(rogue.messenger.me, group_id, lamport + n, f"Ours {n}", 1.0)
                alice.messenger._groups.learn(group, change.signed, "a group frame")
    assert len(group.log) < 2 * MAX_IGNORED_PER_AUTHOR + 10
    assert any("not kept" in r for r in group_rejections(alice))
    await alice.messenger.remove_group_member(group_id, bob.messenger.identity().chat_key)
    await alice.messenger.add_group_member(group_id, dave.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    (invite,) = await dave.messenger.invites()
    await dave.messenger.accept_invite(invite.id)
    expected = {"Alice": "joined", "Bob": "removed", "Carol": "joined", "Dave": "joined"}
    await all_see(group_id, expected, alice, carol, dave)


async def test_a_member_passing_on_anothers_session_key_as_theirs_does_not_silence_them(
    peers: Peers, autojump_clock: Any
) -> None:
    """Every member holds Bob's session key. Carol's client hands it to Dave, who just
    joined, as hers, before Bob's own share reaches him: Bob's share still wins (no frame
    of the session ever named Carol), and Dave reads Bob."""
    alice, bob, carol, group_id = await three(peers)
    dave = await peers.start("dave")
    await befriend(alice, dave)
    await bob.messenger.send_text(group_id, "before Dave")
    await wait_until(lambda: _has(carol, group_id, "before Dave"))
    bob.node.set_online(False)
    await alice.messenger.add_group_member(group_id, dave.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    (invite,) = await dave.messenger.invites()
    await dave.messenger.accept_invite(invite.id)
    joined = {**EVERYONE, "Dave": "joined"}
    await all_see(group_id, joined, alice, carol, dave)

    bobs = bob.messenger._groups.groups.get(group_id)
    assert bobs is not None and bobs.keys.outbound is not None
    session = bobs.keys.outbound
    body = group_pb2.GroupShareBody(
        group_id=group_id,
        session_id=session.id,
        session_key=session.session.session_key.to_base64(),
    )
    dave_link = ContactLink.parse(dave.messenger.me.contact_link())
    async with carol.messenger._lock:
        sealed = carol.messenger._olm.seal_to(dave_link, direct_pb2.DirectPayload(group_share=body))
    share = Share(dave_link.identity_key, sealed.encode())
    payload = GroupEnvelope("c" * 43, b"\x00", (share,)).encode()
    dave.node.deliver(
        dave.messenger.pubsub_topic,
        WakuMessage(payload, group_content_topic(group_id), timestamp=2),
    )
    await trio.sleep(1)
    daves = dave.messenger._groups.groups.get(group_id)
    assert daves is not None
    assert daves.keys.inbound[session.id].owner == carol.messenger.identity().chat_key

    bob.node.set_online(True)
    await all_see(group_id, joined, bob, limit=300)
    await bob.messenger.send_text(group_id, "hello Dave")
    await wait_until(lambda: _has(dave, group_id, "hello Dave"), 300)
    assert daves.keys.inbound[session.id].owner == bob.messenger.identity().chat_key
    assert daves.keys.inbound[session.id].confirmed


async def test_a_change_on_a_full_log_is_not_possible_rather_than_an_error(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, _, _, group_id = await three(peers)
    group = alice.messenger._groups.groups.get(group_id)
    assert group is not None
    while len(group.log) < MAX_LOG_ENTRIES:  # an admin's own renames, from an earlier life
        group.learn(ch.renamed(alice.messenger.me, group_id, group.log.next_lamport(), "R", 1.0))
    with pytest.raises(ev.NotPossible, match="full"):
        await alice.messenger.rename_group(group_id, "One too many")


async def test_a_removed_admins_backdated_removal_changes_nothing(
    peers: Peers, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice makes Bob an admin, then removes him. Bob signs, after his removal, a removal of
    Carol at a log position from before it (where he was still an admin), and Dave, still a
    member, passes it on. Nobody's member list changes."""
    alice, bob, carol, dave = [await peers.start(n) for n in ("alice", "bob", "carol", "dave")]
    group_id = await group_of(alice, bob, carol, dave)
    everyone = {"Alice": "joined", "Bob": "joined", "Carol": "joined", "Dave": "joined"}
    await all_see(group_id, everyone, alice, bob, carol, dave)
    bob_key = bob.messenger.identity().chat_key
    await alice.messenger.grant_group_admin(group_id, bob_key)

    async def bob_is_admin() -> bool:
        return bob_key in (await bob.messenger.group(group_id)).admins

    await wait_until(bob_is_admin)
    bob_group = bob.messenger._groups.groups.get(group_id)
    assert bob_group is not None
    bob_heads, bob_lamport = bob_group.log.heads(), bob_group.log.next_lamport()
    for name in ("Friends again", "Friends"):  # Alice's log moves on past Bob's
        await alice.messenger.rename_group(group_id, name)
    await alice.messenger.remove_group_member(group_id, bob_key)
    after = {**everyone, "Bob": "removed"}
    await all_see(group_id, after, alice, bob, carol, dave)
    alice_group = alice.messenger._groups.groups.get(group_id)
    assert alice_group is not None
    (removal,) = [c for c in alice_group.log.changes() if c.kind is ch.ChangeKind.REMOVED]
    backdated = ch.removed(
        bob.messenger.me,
        group_id,
        bob_lamport,
        carol.messenger.me.chat_key,
        1.0,
        parents=bob_heads,
    )
    assert backdated.order < removal.order
    dave_group = dave.messenger._groups.groups.get(group_id)
    assert dave_group is not None
    async with dave.messenger._lock:
        await dave.messenger._groups.relay(dave_group, backdated)
    await trio.sleep(5)
    await all_see(group_id, after, alice, carol, dave)
    for running in (alice, carol):
        assert any("removed" in r and "not kept" in r for r in group_rejections(running))
    assert "without knowing of their removal" in caplog.text
