"""Private groups on real nodes over loopback: one service node (relay + store), messengers
with real SQLCipher profiles, the issue's six scenarios. Every wait is a condition
(wait_until); nothing sleeps for time to pass."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest
from harness.live_groups import (
    accept_invitation,
    all_see,
    befriend,
    group_of,
    members_of,
    online,
    refusals,
    sent,
    texts,
)
from harness.waiting import wait_until

from chat.groups import changes as ch
from chat.groups.changes import ChangeKind
from chat.groups.wire import GroupEnvelope, group_content_topic
from chat.identity import ContactLink
from chat.messenger import Messenger
from chat.messenger.conversation import waku_message
from chat.proto import direct_pb2, group_pb2
from chat.reliability.sds import SdsChannel

pytestmark = pytest.mark.slow

EACH = 20


async def every_sent_delivered(messenger: Messenger, group_id: str, count: int, to: int) -> bool:
    mine = await sent(messenger, group_id)
    return len(mine) == count and all(
        m.state == "delivered" and m.recipients == to and len(m.delivered_to) == to for m in mine
    )


def per_sender(found: list[str], name: str) -> list[str]:
    return [t for t in found if t.startswith(f"{name} ")]


async def test_four_members_twenty_messages_each_all_eighty_everywhere_delivered_3_of_3(
    net: Any,
) -> None:
    await net.start_service()
    people = [await net.start(n) for n in ("alice", "bob", "carol", "dave", "erin")]
    alice, bob, carol, dave, erin = people
    members = [alice, bob, carol, dave]
    names = ["alice", "bob", "carol", "dave"]
    group_id = await group_of(alice, bob, carol, dave)  # Erin is on the network, not in it
    for i in range(EACH):
        for name, member in zip(names, members, strict=True):
            await member.send_text(group_id, f"{name} {i}")

    async def everyone_has_all() -> bool:
        for member in members:
            found = await texts(member, group_id)
            if len(found) != 3 * EACH or len(await sent(member, group_id)) != EACH:
                return False
        return True

    await wait_until(everyone_has_all, 120)
    for name, member in zip(names, members, strict=True):
        found = await texts(member, group_id)
        assert len(set(found)) == 3 * EACH  # each once
        for other in names:
            if other != name:
                assert per_sender(found, other) == [f"{other} {i}" for i in range(EACH)]

    async def all_delivered() -> bool:
        return all([await every_sent_delivered(m, group_id, EACH, 3) for m in members])

    await wait_until(all_delivered, 120)
    message = (await sent(alice, group_id))[0]
    others = {m.identity().chat_key for m in (bob, carol, dave)}
    assert set(message.delivered_to) == others
    acks = [s for s in await alice.trace(message.id) if s.to_state == "delivered"]
    assert acks  # the trace names the last acknowledgement
    assert [c for c in await erin.chats() if c.id == group_id] == []


async def test_a_removed_member_receives_the_messages_and_decrypts_none(net: Any) -> None:
    await net.start_service()
    alice, bob, carol = [await net.start(n) for n in ("alice", "bob", "carol")]
    group_id = await group_of(alice, bob, carol)
    await alice.send_text(group_id, "alice before")
    await wait_until(lambda: _has(carol, group_id, "alice before"))

    await alice.remove_group_member(group_id, carol.identity().chat_key)
    after = {"Alice": "joined", "Bob": "joined", "Carol": "removed"}
    await all_see(group_id, after, alice, bob, carol)
    assert (await carol.group(group_id)).my_state == "removed"
    unreadable_before = (await carol.group(group_id)).undecryptable
    for i in range(5):
        await alice.send_text(group_id, f"alice after {i}")
        await bob.send_text(group_id, f"bob after {i}")

    await wait_until(lambda: every_sent_delivered(bob, group_id, 5, 1), 60)
    await wait_until(lambda: _has(bob, group_id, "alice after 4"), 60)

    async def carol_got_them_all() -> bool:
        # Carol's node is on the shard and gets each WakuMessage; each is counted as one she
        # cannot decrypt (10 messages, and the syncs that go with them).
        return (await carol.group(group_id)).undecryptable >= unreadable_before + 10

    await wait_until(carol_got_them_all, 60)
    assert await texts(carol, group_id) == ["alice before"]
    assert "bob after 0" in await texts(alice, group_id)


async def test_a_fifth_person_added_sees_nothing_before_and_everything_after(net: Any) -> None:
    await net.start_service()
    alice, bob, carol = [await net.start(n) for n in ("alice", "bob", "carol")]
    group_id = await group_of(alice, bob)
    for i in range(3):
        await alice.send_text(group_id, f"alice before {i}")
        await bob.send_text(group_id, f"bob before {i}")
    await wait_until(lambda: every_sent_delivered(alice, group_id, 3, 1), 60)
    await wait_until(lambda: every_sent_delivered(bob, group_id, 3, 1), 60)

    await befriend(alice, carol)
    await alice.add_group_member(group_id, carol.identity().chat_key)
    await accept_invitation(carol, group_id)
    everyone = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}
    await all_see(group_id, everyone, alice, bob, carol)
    for i in range(3):
        await alice.send_text(group_id, f"alice after {i}")
        await bob.send_text(group_id, f"bob after {i}")

    async def carol_has_after() -> bool:
        return len(await texts(carol, group_id)) >= 6

    await wait_until(carol_has_after, 60)

    async def after_delivered_to_both() -> bool:
        mine = [m for m in await sent(alice, group_id) if "after" in m.text]
        theirs = [m for m in await sent(bob, group_id) if "after" in m.text]
        return all(m.state == "delivered" and m.recipients == 2 for m in mine + theirs)

    await wait_until(after_delivered_to_both, 60)
    found = await texts(carol, group_id)
    assert per_sender(found, "alice") == [f"alice after {i}" for i in range(3)]
    assert per_sender(found, "bob") == [f"bob after {i}" for i in range(3)]
    assert not [t for t in found if "before" in t]


async def test_a_member_offline_gets_messages_an_invite_and_a_rename_on_return(net: Any) -> None:
    await net.start_service()
    alice, bob, carol, dave = [await net.start(n) for n in ("alice", "bob", "carol", "dave")]
    group_id = await group_of(alice, bob, carol)
    await befriend(alice, dave)
    await net.stop("carol")
    for i in range(10):
        sender, name = (alice, "alice") if i % 2 == 0 else (bob, "bob")
        await sender.send_text(group_id, f"{name} {i}")
    await alice.add_group_member(group_id, dave.identity().chat_key)
    await accept_invitation(dave, group_id)
    await alice.rename_group(group_id, "Reunion")
    await all_see(
        group_id,
        {"Alice": "joined", "Bob": "joined", "Carol": "joined", "Dave": "joined"},
        alice,
        bob,
        dave,
    )

    async def stored() -> bool:
        mine = await sent(alice, group_id) + await sent(bob, group_id)
        return len(mine) == 10 and all(m.state == "stored" for m in mine)

    await wait_until(stored, 60)  # Bob has them; Carol's acknowledgement is missing

    carol = await net.start("carol")

    async def caught_up() -> bool:
        view = await carol.group(group_id)
        return len(await texts(carol, group_id)) >= 10 and view.name == "Reunion"

    await wait_until(caught_up, 90)
    await all_see(
        group_id,
        {"Alice": "joined", "Bob": "joined", "Carol": "joined", "Dave": "joined"},
        carol,
        limit=60,
    )

    async def delivered() -> bool:
        mine = await sent(alice, group_id) + await sent(bob, group_id)
        return len(mine) == 10 and all(m.state == "delivered" for m in mine)

    await wait_until(delivered, 90)
    found = await texts(carol, group_id)
    assert per_sender(found, "alice") == [f"alice {i}" for i in range(0, 10, 2)]
    assert per_sender(found, "bob") == [f"bob {i}" for i in range(1, 10, 2)]
    assert len(found) == 10  # once each
    lines = await texts(carol, group_id, "system")
    assert "Alice invited Dave" in lines and "Dave joined" in lines
    assert "Alice renamed the group to “Reunion”" in lines
    assert len(lines) == len(set(lines))


async def test_two_admins_changing_the_members_at_once_end_with_the_same_list(net: Any) -> None:
    await net.start_service()
    alice, bob, carol, dave, erin = [
        await net.start(n) for n in ("alice", "bob", "carol", "dave", "erin")
    ]
    group_id = await group_of(alice, bob, carol, dave)
    bob_key = bob.identity().chat_key
    await alice.grant_group_admin(group_id, bob_key)
    for member in (bob, carol, dave):
        await wait_until(lambda m=member: _admin(m, group_id, bob.identity().chat_key))
    await befriend(bob, erin)
    # Crossed: each admin's change is made before the other's can have arrived (one
    # process, no await on the network between them).
    await alice.remove_group_member(group_id, dave.identity().chat_key)
    await bob.add_group_member(group_id, erin.identity().chat_key)
    await bob.rename_group(group_id, "Bob's name")
    await alice.rename_group(group_id, "Alice's name")
    await accept_invitation(erin, group_id)
    final = {
        "Alice": "joined",
        "Bob": "joined",
        "Carol": "joined",
        "Dave": "removed",
        "Erin": "joined",
    }
    await all_see(group_id, final, alice, bob, carol, erin, limit=60)

    async def one_name() -> bool:  # the same rename wins everywhere
        return len({(await m.group(group_id)).name for m in (alice, bob, carol, erin)}) == 1

    await wait_until(one_name, 60)
    log = alice._groups.groups.get(group_id).log.changes()
    removal = next(c for c in log if c.kind is ChangeKind.REMOVED)
    invitation = next(c for c in log if c.kind is ChangeKind.INVITED and c.author == bob_key)
    renames = [c.lamport for c in log if c.kind is ChangeKind.RENAMED]
    assert removal.lamport == invitation.lamport  # they crossed: neither saw the other
    assert len(renames) == 2 and renames[0] == renames[1]
    admins = [sorted((await m.group(group_id)).admins) for m in (alice, bob, carol, erin)]
    assert all(a == admins[0] for a in admins)


async def test_forged_change_stranger_invite_removed_sender_and_tampered_ciphertext_refused(
    net: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chat.messenger")
    await net.start_service()
    alice, bob, carol, mallory = [await net.start(n) for n in ("alice", "bob", "carol", "mallory")]
    group_id = await group_of(alice, bob, carol)
    everyone = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}
    await carol.send_text(group_id, "carol while a member")  # Bob holds Carol's session
    await wait_until(lambda: _has(bob, group_id, "carol while a member"))
    seen = await bob.messages(group_id, limit=500)
    bob_refused = refusals(bob)

    # 1. Forged changes: Carol (no admin) removes Alice, and renames under Alice's name with
    #    her own signature.
    carol_group = carol._groups.groups.get(group_id)
    assert carol_group is not None
    carol_me = carol.me
    unauthorised = ch.removed(
        carol_me, group_id, carol_group.log.next_lamport(), alice.me.chat_key, time.time()
    )
    signed = group_pb2.SignedChange.FromString(
        ch.renamed(carol_me, group_id, carol_group.log.next_lamport(), "Carol's", 1.0).signed
    )
    body = group_pb2.ChangeBody.FromString(signed.body)
    body.author = alice.me.chat_key  # claims to be Alice's
    forged = replace(
        unauthorised,
        id="f" * 32,
        signed=group_pb2.SignedChange(
            body=body.SerializeToString(), signature=signed.signature
        ).SerializeToString(),
    )
    async with carol._lock:
        await carol._groups.relay(carol_group, unauthorised)
        await carol._groups.relay(carol_group, forged)
    await wait_until(lambda: bob_refused.has("bad signature"), 30)
    await wait_until(lambda: bob_refused.has("not an admin"), 30)
    assert await members_of(bob, group_id) == everyone
    assert (await bob.group(group_id)).name == "Friends"

    # 2. An invitation from Mallory, who has Bob's link and is not his contact.
    alice_group = alice._groups.groups.get(group_id)
    assert alice_group is not None
    invite = group_pb2.GroupInviteBody(invite_id="b" * 32, group_id=group_id)
    for change in alice_group.log.changes():
        invite.log.add().ParseFromString(change.signed)
    link = ContactLink.parse(bob.identity().contact_link)
    async with mallory._lock:
        envelope = mallory._olm.seal_to(link, direct_pb2.DirectPayload(group_invite=invite))
    request_topic = bob._contacts_flow.request_topic
    await wait_until(lambda: online(mallory))
    mallory.node.publish(
        mallory.pubsub_topic, waku_message(request_topic, envelope.encode(), time.time())
    )
    await wait_until(
        lambda: bob_refused.has("a group invitation from someone who is not a contact")
    )
    assert "b" * 32 not in [i.id for i in await bob.invites()]

    # 3. A message from Carol after her removal, in the session Bob holds from before.
    await alice.remove_group_member(group_id, carol.identity().chat_key)
    await all_see(group_id, {**everyone, "Carol": "removed"}, alice, bob, carol)
    assert carol_group.keys.outbound is not None
    removed_content = group_pb2.GroupContent(
        message=direct_pb2.ChatMessage(id="a" * 32, text="still here").SerializeToString()
    ).SerializeToString()
    frame = SdsChannel(group_id, carol.me.chat_key_text).wrap(removed_content, "a" * 32, 1)
    ciphertext = carol_group.keys.encrypt(
        carol_group.keys.outbound, frame.message_id, frame.encode(), content=False
    )
    payload = GroupEnvelope(carol_group.keys.outbound.id, ciphertext).encode()
    topic = group_content_topic(group_id)
    carol.node.publish(carol.pubsub_topic, waku_message(topic, payload, time.time()))
    await wait_until(lambda: bob_refused.has("who is not a member of this group"))

    # 4. Tampered ciphertext: Alice's own session (Bob holds it once her next message came),
    #    one bit flipped inside the encrypted part.
    await alice.send_text(group_id, "alice after the removal")
    await wait_until(lambda: _has(bob, group_id, "alice after the removal"))
    session = alice_group.keys.outbound
    assert session is not None
    content = group_pb2.GroupContent(
        message=direct_pb2.ChatMessage(id="c" * 32, text="tampered").SerializeToString()
    ).SerializeToString()
    frame = SdsChannel(group_id, alice.me.chat_key_text).wrap(content, "c" * 32, 1)
    tampered = bytearray(alice_group.keys.encrypt(session, "c" * 32, frame.encode(), content=False))
    tampered[-80] ^= 0x40  # before the MAC and the signature
    payload = GroupEnvelope(session.id, bytes(tampered)).encode()
    alice.node.publish(alice.pubsub_topic, waku_message(topic, payload, time.time()))
    await wait_until(lambda: bob_refused.has("tampered"))

    # Nothing shown: Bob's chat holds what it held, and Alice's message after the removal.
    now = await bob.messages(group_id, limit=500)
    new = [(m.kind, m.text) for m in now if m.id not in {n.id for n in seen}]
    assert ("text", "alice after the removal") in new
    assert not [t for _, t in new if t in ("still here", "tampered", "Carol's")]
    assert all("Carol's" not in t for t in await texts(bob, group_id, "system"))
    assert bob.rejected >= 5
    for line in (
        "bad signature",
        "is ignored: a 'removed' change by a member who is not an admin",
        "a group invitation from someone who is not a contact",
        "who is not a member of this group",
        "tampered",
    ):
        assert any(
            line in r.getMessage() and "rejected an incoming message" in r.getMessage()
            for r in caplog.records
        ), line


async def _has(messenger: Messenger, group_id: str, text: str) -> bool:
    return text in await texts(messenger, group_id)


async def _admin(messenger: Messenger, group_id: str, chat_key: str) -> bool:
    return chat_key in (await messenger.group(group_id)).admins
