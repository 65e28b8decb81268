"""Private groups over time, on the fake network and the mock clock: a member offline while
things happen, admins changing the member list at the same time, sessions rotating,
invitations that fail, expire, are declined or withdrawn, and a restart."""

from __future__ import annotations

from typing import Any

import trio
from harness.fake_groups import all_see, group_messages, texts
from harness.fake_messengers import Peers, Running, befriend, group_of
from harness.waiting import wait_until

from chat.groups.invites import InvitePolicy
from chat.groups.keys import RotationPolicy
from chat.groups.wire import GroupEnvelope

EVERYONE = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}


async def outgoing_states(running: Running, group_id: str) -> list[str]:
    found = await running.messenger.messages(group_id, limit=500)
    return [m.state for m in found if m.outgoing and m.kind == "text"]


async def test_a_member_offline_gets_messages_an_invitation_and_a_rename_on_return(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol, dave = [await peers.start(n) for n in ("alice", "bob", "carol", "dave")]
    group_id = await group_of(alice, bob, carol)
    await all_see(group_id, EVERYONE, alice, bob, carol)
    await befriend(alice, dave)
    carol.node.set_online(False)
    for n in range(10):
        await (alice if n % 2 else bob).messenger.send_text(group_id, f"while away {n}")
    await alice.messenger.add_group_member(group_id, dave.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    (invite,) = await dave.messenger.invites()
    await dave.messenger.accept_invite(invite.id)
    await alice.messenger.rename_group(group_id, "Reunion")
    await trio.sleep(5)
    assert await texts(carol, group_id) == []

    carol.node.set_online(True)
    expected = [f"while away {n}" for n in range(10)]

    async def caught_up() -> bool:
        view = await carol.messenger.group(group_id)
        return sorted(await texts(carol, group_id)) == expected and view.name == "Reunion"

    await wait_until(caught_up, 120)
    await all_see(group_id, {**EVERYONE, "Dave": "joined"}, alice, bob, carol, dave)

    async def all_delivered() -> bool:
        states = await outgoing_states(alice, group_id) + await outgoing_states(bob, group_id)
        return states == ["delivered"] * 10

    await wait_until(all_delivered, 300)
    lines = await texts(carol, group_id, "system")
    assert "Alice invited Dave" in lines and "Dave joined" in lines
    assert "Alice renamed the group to “Reunion”" in lines
    shown = await texts(carol, group_id)  # each once, each sender's in their order
    assert [t for t in shown if int(t[-1]) % 2] == expected[1::2]
    assert [t for t in shown if not int(t[-1]) % 2] == expected[0::2]


async def test_two_admins_changing_the_members_at_once_end_with_the_same_list(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol, dave, erin = [
        await peers.start(n) for n in ("alice", "bob", "carol", "dave", "erin")
    ]
    group_id = await group_of(alice, bob, carol, dave)
    everyone = {**EVERYONE, "Dave": "joined"}
    await all_see(group_id, everyone, alice, bob, carol, dave)
    await alice.messenger.grant_group_admin(group_id, bob.messenger.identity().chat_key)

    async def bob_is_admin() -> bool:
        view = await bob.messenger.group(group_id)
        return bob.messenger.identity().chat_key in view.admins

    await wait_until(bob_is_admin)
    await befriend(bob, erin)
    await trio.sleep(5)
    # Crossed: neither hears the other before making their change.
    alice.node.set_online(False)
    bob.node.set_online(False)
    await alice.messenger.remove_group_member(group_id, dave.messenger.identity().chat_key)
    await bob.messenger.add_group_member(group_id, erin.messenger.identity().chat_key)
    await bob.messenger.rename_group(group_id, "Bob's name")
    await alice.messenger.rename_group(group_id, "Alice's name")
    alice.node.set_online(True)
    bob.node.set_online(True)
    final = {**everyone, "Dave": "removed", "Erin": "invited"}
    await all_see(group_id, final, alice, bob, carol, limit=120)
    names = {(await p.messenger.group(group_id)).name for p in (alice, bob, carol)}
    assert len(names) == 1  # the same rename wins everywhere


async def test_a_session_rotates_after_n_messages_and_every_member_still_reads(
    peers: Peers, autojump_clock: Any
) -> None:
    rotation = RotationPolicy(max_messages=3, reshare_after=30.0)
    alice = await peers.start("alice", group_keys=rotation)
    bob = await peers.start("bob", group_keys=rotation)
    group_id = await group_of(alice, bob)
    await all_see(group_id, {"Alice": "joined", "Bob": "joined"}, alice, bob)
    for n in range(7):
        await alice.messenger.send_text(group_id, f"message {n}")
        await trio.sleep(0.5)
    await wait_until(
        lambda: _equal(texts(bob, group_id), [f"message {n}" for n in range(7)])  # type: ignore[arg-type]
    )
    sessions = []
    for _, message in group_messages(alice):
        envelope = GroupEnvelope.decode(message.payload)
        if envelope.session_id not in sessions:
            sessions.append(envelope.session_id)
    # The invitation frame's session, then one per 3 content frames: rotated at least twice.
    assert len(sessions) >= 3


async def _equal(found: Any, expected: list[str]) -> bool:
    return bool(await found == expected)


async def test_an_invitation_that_reaches_nobody_fails_and_goes_again_when_asked(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob = await peers.start("alice"), await peers.start("bob")
    await befriend(alice, bob)
    peers.network.store_keeps = False
    alice.node.set_online(False)
    group = await alice.messenger.create_group("Lonely", [bob.messenger.identity().chat_key])
    # InvitePolicy: 60 s, then 180 s; the third send that reaches nobody fails it.
    await trio.sleep(60 + 180 + 1)
    (invite,) = await alice.messenger.invites()
    assert (invite.direction, invite.state, invite.sends) == ("sent", "failed", 3)
    assert invite.reason == "the invitation reached nobody in 3 sends: no peers"
    assert [i.kind for i in await alice.messenger.outbox()].count("group_invite") == 1
    alice.node.set_online(True)
    await alice.messenger.add_group_member(group.id, bob.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    assert [i.state for i in await bob.messenger.invites()] == ["invited"]
    assert [i.state for i in await alice.messenger.invites()] == ["invited"]


async def test_declined_expired_and_withdrawn_invitations(
    peers: Peers, autojump_clock: Any
) -> None:
    short = InvitePolicy(lifetime=600.0, first_resend=60.0, jitter=0.0)
    alice, bob, carol, dave = [
        await peers.start(n, invites=short) for n in ("alice", "bob", "carol", "dave")
    ]
    for other in (bob, carol, dave):
        await befriend(alice, other)
    keys = [p.messenger.identity().chat_key for p in (bob, carol, dave)]
    group = await alice.messenger.create_group("Club", keys)
    await trio.testing.wait_all_tasks_blocked()
    (bob_invite,) = await bob.messenger.invites()
    await bob.messenger.decline_invite(bob_invite.id)
    await alice.messenger.remove_group_member(group.id, keys[1])  # withdraw Carol's

    async def answered() -> bool:
        sent = {i.to: i.state for i in await alice.messenger.invites()}
        theirs = [i.state for i in await carol.messenger.invites()]
        return sent.get(keys[0]) == "declined" and theirs == ["cancelled"]

    await wait_until(answered)
    view = await alice.messenger.group(group.id)
    states = {m.display_name: m.state for m in view.members}
    assert states == {"Alice": "joined", "Bob": "declined", "Carol": "removed", "Dave": "invited"}
    assert "Bob declined the invitation" in await texts(alice, group.id, "system")
    await trio.sleep(700)  # past the invitation's lifetime
    assert [i.state for i in await dave.messenger.invites()] == ["expired"]
    sent = {i.to: i.state for i in await alice.messenger.invites()}
    assert sent[keys[2]] == "expired"
    view = await alice.messenger.group(group.id)
    assert {m.display_name: m.state for m in view.members}["Dave"] == "expired"


async def test_groups_sessions_and_invitations_survive_a_restart(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob = await peers.start("alice"), await peers.start("bob")
    group_id = await group_of(alice, bob)
    await all_see(group_id, {"Alice": "joined", "Bob": "joined"}, alice, bob)
    await alice.messenger.send_text(group_id, "before")
    await wait_until(lambda: _equal(texts(bob, group_id), ["before"]))  # type: ignore[arg-type]
    await peers.stop("bob")
    bob = await peers.start("bob")
    await alice.messenger.send_text(group_id, "after")
    await bob.messenger.send_text(group_id, "back")
    await wait_until(
        lambda: _equal(texts(bob, group_id), ["before", "after"])  # type: ignore[arg-type]
    )
    await wait_until(lambda: _equal(texts(alice, group_id), ["back"]))  # type: ignore[arg-type]
    assert (await bob.messenger.group(group_id)).name == "Friends"
    assert [i.state for i in await bob.messenger.invites()] == ["joined"]
