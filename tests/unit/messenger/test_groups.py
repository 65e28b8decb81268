"""Private groups on the fake network and the mock clock: creating, inviting, joining,
messages delivered k of n with the evidence, membership changes and what each member can
read after them."""

from __future__ import annotations

from typing import Any

import trio
from harness.fake_groups import all_see, group_rejections, texts
from harness.fake_messengers import Peers, befriend, group_of
from harness.waiting import wait_until

from chat import events as ev
from chat.groups.wire import group_content_topic
from chat.waku.bandwidth import KINDS


async def test_three_people_join_and_every_message_is_delivered_to_both_others(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    group_id = await group_of(alice, bob, carol)

    async def all_joined() -> bool:
        views = [await p.messenger.group(group_id) for p in (alice, bob, carol)]
        return all({m.state for m in v.members} == {"joined"} for v in views)

    await wait_until(all_joined)
    sent = [await p.messenger.send_text(group_id, f"hi from {n}") for n, p in
            (("alice", alice), ("bob", bob), ("carol", carol))]  # fmt: skip

    async def delivered() -> bool:
        views = [
            await p.messenger.message(m.id) for p, m in zip((alice, bob, carol), sent, strict=True)
        ]
        return all(v.state == "delivered" for v in views)

    await wait_until(delivered)
    for running, message in zip((alice, bob, carol), sent, strict=True):
        view = await running.messenger.message(message.id)
        assert view.recipients == 2 and len(view.delivered_to) == 2
        steps = await running.messenger.trace(message.id)
        assert steps[-1].evidence["delivered"] == "2/2"
        partial = [s for s in steps if s.evidence.get("acknowledged") == "1/2"]
        assert len(partial) == 1 and len(partial[0].evidence["missing"]) == 1
    assert await texts(bob, group_id) == ["hi from alice", "hi from carol"]
    assert await texts(carol, group_id) == ["hi from alice", "hi from bob"]
    lines = await texts(bob, group_id, "system")
    assert any("joined" in line for line in lines)
    assert [group_rejections(p) for p in (alice, bob, carol)] == [[], [], []]
    view = await bob.messenger.group(group_id)
    assert view.name == "Friends" and view.admins == [alice.messenger.identity().chat_key]
    chats = {c.id: c for c in await bob.messenger.chats()}
    assert chats[group_id].kind == "group" and chats[group_id].name == "Friends"


async def test_a_removed_member_decrypts_nothing_after_and_the_rest_keep_chatting(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol = [await peers.start(n) for n in ("alice", "bob", "carol")]
    group_id = await group_of(alice, bob, carol)
    joined = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}
    await all_see(group_id, joined, alice, bob, carol)
    await alice.messenger.send_text(group_id, "before")

    async def carol_has_it() -> bool:
        return await texts(carol, group_id) == ["before"]

    await wait_until(carol_has_it)

    carol_key = carol.messenger.identity().chat_key
    await alice.messenger.remove_group_member(group_id, carol_key)
    after = {"Alice": "joined", "Bob": "joined", "Carol": "removed"}
    await all_see(group_id, after, alice, bob, carol)
    assert (await carol.messenger.group(group_id)).my_state == "removed"
    undecryptable = (await carol.messenger.group(group_id)).undecryptable
    sent = [
        await alice.messenger.send_text(group_id, "after 1"),
        await bob.messenger.send_text(group_id, "after 2"),
    ]

    async def delivered() -> bool:
        views = [await alice.messenger.message(sent[0].id), await bob.messenger.message(sent[1].id)]
        return all(v.state == "delivered" and v.recipients == 1 for v in views)

    await wait_until(delivered)
    assert "after 2" in await texts(alice, group_id) and "after 1" in await texts(bob, group_id)
    assert await texts(carol, group_id) == ["before"]
    later = (await carol.messenger.group(group_id)).undecryptable
    assert later >= undecryptable + 2  # it received both, and could read neither
    assert group_rejections(carol) == []  # not an attack: just not for them any more
    lines = await texts(bob, group_id, "system")
    assert "Alice removed Carol" in lines
    try:
        await carol.messenger.send_text(group_id, "let me back in")
    except ev.NotPossible as exc:
        assert "not a member" in str(exc)
    else:
        raise AssertionError("a removed member could send")


async def test_a_member_added_later_reads_only_what_follows(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, dave = [await peers.start(n) for n in ("alice", "bob", "dave")]
    group_id = await group_of(alice, bob)
    await all_see(group_id, {"Alice": "joined", "Bob": "joined"}, alice, bob)
    await alice.messenger.send_text(group_id, "old news")
    await bob.messenger.send_text(group_id, "old reply")
    await befriend(alice, dave)
    await alice.messenger.add_group_member(group_id, dave.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    (invite,) = await dave.messenger.invites()
    assert (invite.state, invite.direction, invite.name) == ("invited", "received", "Friends")
    assert invite.from_ == alice.messenger.identity().chat_key
    await dave.messenger.accept_invite(invite.id)
    everyone = {"Alice": "joined", "Bob": "joined", "Dave": "joined"}
    await all_see(group_id, everyone, alice, bob, dave)
    sent = [
        await alice.messenger.send_text(group_id, "welcome"),
        await bob.messenger.send_text(group_id, "hi dave"),
        await dave.messenger.send_text(group_id, "thanks"),
    ]
    senders = (alice, bob, dave)

    async def delivered() -> bool:
        views = [await p.messenger.message(m.id) for p, m in zip(senders, sent, strict=True)]
        return all(v.state == "delivered" for v in views)

    await wait_until(delivered)
    assert await texts(dave, group_id) == ["welcome", "hi dave"]
    assert "thanks" in await texts(bob, group_id)
    assert [i.state for i in await alice.messenger.invites() if i.to == invite.to] == ["joined"]


async def test_a_rename_and_a_leave_reach_everyone_as_system_lines(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol = [await peers.start(n) for n in ("alice", "bob", "carol")]
    group_id = await group_of(alice, bob, carol)
    await all_see(group_id, {"Alice": "joined", "Bob": "joined", "Carol": "joined"}, alice, bob)
    await alice.messenger.rename_group(group_id, "Book club")
    await bob.messenger.leave_group(group_id)
    await all_see(group_id, {"Alice": "joined", "Bob": "left", "Carol": "joined"}, alice, carol)

    async def renamed() -> bool:
        return all([(await p.messenger.group(group_id)).name == "Book club" for p in (bob, carol)])

    await wait_until(renamed)
    assert {c.name for c in await carol.messenger.chats() if c.id == group_id} == {"Book club"}
    lines = await texts(carol, group_id, "system")
    assert "Alice renamed the group to “Book club”" in lines and "Bob left" in lines
    try:
        await bob.messenger.rename_group(group_id, "mine")
    except ev.NotPossible:
        pass
    else:
        raise AssertionError("a member who left could rename")
    try:
        await carol.messenger.rename_group(group_id, "mine")
    except ev.NotPossible as exc:
        assert "only an admin" in str(exc)
    else:
        raise AssertionError("a member who is no admin could rename")


async def test_the_bandwidth_meter_counts_a_groups_topic_as_chat(
    peers: Peers, autojump_clock: Any
) -> None:
    """The meter was written before groups: their conversation topic must count as chat on
    every member (an SDS sync on it is relabelled per message), not as `message`."""
    alice, bob = await peers.start("alice"), await peers.start("bob")
    group_id = await group_of(alice, bob)
    topic = group_content_topic(group_id)
    for running in (alice, bob):
        kinds = running.node.bandwidth.kinds
        assert kinds.kind_index(topic, outbound=False) == KINDS.index("chat")
    await peers.stop("bob")  # and after a restart, from the stored conversation
    bob = await peers.start("bob")
    assert bob.node.bandwidth.kinds.kind_index(topic, outbound=False) == KINDS.index("chat")


async def test_a_group_created_with_many_invitations_at_once_converges_for_everyone(
    peers: Peers, autojump_clock: Any
) -> None:
    """Every invitation of a new group carries the whole list of invitees: the first ones
    invited used to get a log holding only themselves, and no later share carried enough of
    the rest for them to ever see the whole group (found by tests/bench/groups.py)."""
    people = [await peers.start(name) for name in ("alice", "bob", "carol", "dave", "erin",
                                                      "frank", "grace", "heidi")]  # fmt: skip
    group_id = await group_of(*people)
    everyone = {p.messenger.identity().display_name: "joined" for p in people}
    await all_see(group_id, everyone, *people, limit=30.0)
