"""Contact requests on a fake network: asking, answering, re-sending on the flow's schedule."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.fake_messengers import CONFIG, Peers, befriend
from harness.fake_node import StallingStore

from chat import events as ev
from chat.direct import contact_request_content_topic


async def test_a_request_and_its_acceptance_make_both_sides_mutual_with_one_chat(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    bob_key = bob.messenger.identity().chat_key
    alice_key = alice.messenger.identity().chat_key

    asked = await alice.messenger.add_contact(bob.messenger.identity().contact_link, "hi, Alice")
    assert (asked.state, asked.display_name, asked.chat_id) == ("request_sent", "Bob", None)
    await trio.testing.wait_all_tasks_blocked()
    [request] = await bob.messenger.contacts()
    assert (request.chat_key, request.state, request.intro) == (
        alice_key,
        "request_received",
        "hi, Alice",
    )
    assert [i.kind for i in await alice.messenger.outbox()] == ["contact_request"]

    accepted = await bob.messenger.accept_contact(alice_key)
    await trio.testing.wait_all_tasks_blocked()
    [mutual] = await alice.messenger.contacts()
    assert (mutual.chat_key, mutual.state) == (bob_key, "mutual")
    assert mutual.chat_id == accepted.chat_id is not None
    for running, peer in ((alice, bob_key), (bob, alice_key)):
        [chat] = await running.messenger.chats()
        assert (chat.id, chat.peer_chat_key) == (accepted.chat_id, peer)
        events = running.drain()
        assert any(isinstance(e, ev.ChatUpdated) for e in events)
        assert any(isinstance(e, ev.ContactUpdated) for e in events)
    assert await alice.messenger.outbox() == []


@pytest.mark.parametrize("saves_done", [0, 1, 2])
async def test_a_clean_stop_while_an_acceptance_is_saved_keeps_the_contact_mutual(
    peers: Peers, autojump_clock: Any, saves_done: int
) -> None:
    """The contacts list shows "mutual" as soon as the acceptance is taken in, before it is
    saved. A clean stop then (the lab's restart after setup, under load: a slow disk) must
    finish that step, not cancel it halfway: the chat row saved, the flow still
    request_sent, and after the restart every write refused as "not contacts any more".
    `saves_done`: DB calls of the step made before the disk stalls."""
    alice = await peers.start("alice", disk=StallingStore)
    bob = await peers.start("bob")
    bob_key = bob.messenger.identity().chat_key
    await alice.messenger.add_contact(bob.messenger.identity().contact_link, "hi")
    await trio.testing.wait_all_tasks_blocked()
    disk = alice.db
    assert isinstance(disk, StallingStore)
    disk.stall(after=saves_done)
    accepted = await bob.messenger.accept_contact(alice.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    assert disk.waiting == 1  # the acceptance is being saved
    assert [c.state for c in await alice.messenger.contacts()] == ["mutual"]

    alice.stopping.set()
    await trio.testing.wait_all_tasks_blocked()
    disk.resume()
    await trio.testing.wait_all_tasks_blocked()  # the stop ends of itself, nothing cancelled
    await peers.stop("alice")
    alice = await peers.start("alice")
    [contact] = await alice.messenger.contacts()
    assert (contact.chat_key, contact.state, contact.chat_id) == (
        bob_key,
        "mutual",
        accepted.chat_id,
    )
    assert accepted.chat_id is not None
    sent = await alice.messenger.send_text(accepted.chat_id, "still here")
    await trio.testing.wait_all_tasks_blocked()
    assert sent.text == "still here"
    assert [m.text for m in await bob.messenger.messages(accepted.chat_id)] == ["still here"]


async def test_an_unanswered_request_is_sent_again_on_its_schedule_until_it_arrives(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    bob.node.set_online(False)
    start = CONFIG.clock()
    bob_link = bob.messenger.identity().contact_link
    asked = await alice.messenger.add_contact(bob_link, "anyone there?")
    partition = contact_request_content_topic(bob.messenger.me.chat_key)

    def requests_sent() -> int:
        return sum(1 for _, m in alice.node.published if m.content_topic == partition)

    # RequestPolicy: re-sent 60 s after the first, then 180 s after that.
    assert (asked.sends, asked.next_send_at, requests_sent()) == (1, start + 60.0, 1)
    await trio.sleep(59)
    assert requests_sent() == 1
    await trio.sleep(2)
    [view] = await alice.messenger.contacts()
    assert (view.sends, view.next_send_at, requests_sent()) == (2, start + 240.0, 2)

    bob.node.set_online(True)
    await trio.sleep(180)
    [request] = await bob.messenger.contacts()
    assert (request.state, request.intro) == ("request_received", "anyone there?")
    assert requests_sent() == 3


async def test_a_declined_request_is_closed_on_both_sides(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    await alice.messenger.add_contact(bob.messenger.identity().contact_link)
    await trio.testing.wait_all_tasks_blocked()
    declined = await bob.messenger.decline_contact(alice.messenger.identity().chat_key)
    await trio.testing.wait_all_tasks_blocked()
    assert declined.state == "declined_by_us"
    assert [c.state for c in await alice.messenger.contacts()] == ["declined_by_them"]
    assert await alice.messenger.chats() == [] and await bob.messenger.chats() == []


async def test_a_new_display_name_reaches_every_contact(peers: Peers, autojump_clock: Any) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    assert (await alice.messenger.set_display_name("Alice B")).display_name == "Alice B"
    await trio.testing.wait_all_tasks_blocked()
    [contact] = await bob.messenger.contacts()
    [chat] = await bob.messenger.chats()
    assert (contact.display_name, chat.id, chat.name) == ("Alice B", chat_id, "Alice B")


async def test_asking_fifty_times_sends_one_request_and_keeps_its_schedule(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    bob.node.set_online(False)
    partition = contact_request_content_topic(bob.messenger.me.chat_key)
    bob_link = bob.messenger.identity().contact_link
    first = await alice.messenger.add_contact(bob_link, "hi")
    for attempt in range(49):
        again = await alice.messenger.add_contact(bob_link, f"hi again {attempt}")
        assert again == first  # the open request as it is: same intro, sends and schedule
    assert sum(1 for _, m in alice.node.published if m.content_topic == partition) == 1
    [view] = await alice.messenger.contacts()
    assert (view.sends, view.next_send_at, view.intro) == (1, first.next_send_at, "hi")


async def test_a_withdrawn_request_shows_as_withdrawn_on_the_other_side(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    alice_key = alice.messenger.identity().chat_key
    await alice.messenger.add_contact(bob.messenger.identity().contact_link, "hi")
    await trio.testing.wait_all_tasks_blocked()
    assert [c.state for c in await bob.messenger.contacts()] == ["request_received"]
    cancelled = await alice.messenger.cancel_contact_request(bob.messenger.identity().chat_key)
    assert cancelled.state == "cancelled_by_us"
    await trio.testing.wait_all_tasks_blocked()
    [withdrawn] = await bob.messenger.contacts()
    assert (withdrawn.chat_key, withdrawn.state) == (alice_key, "cancelled_by_them")
    assert any(
        isinstance(e, ev.ContactUpdated) and e.contact.state == "cancelled_by_them"
        for e in bob.drain()
    )
    assert bob.rejections() == []
    with pytest.raises(ev.NotPossible):  # nothing left to answer
        await bob.messenger.accept_contact(alice_key)


async def test_the_withdrawal_of_an_older_request_leaves_a_newer_one_open(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    bob_link = bob.messenger.identity().contact_link
    bob_key = bob.messenger.identity().chat_key
    await alice.messenger.add_contact(bob_link, "first")
    await trio.testing.wait_all_tasks_blocked()
    alice.node.lose_next = 1  # the withdrawal is held up on the way
    await alice.messenger.cancel_contact_request(bob_key)
    _, late_withdrawal = alice.node.published[-1]
    await alice.messenger.add_contact(bob_link, "second")
    await trio.testing.wait_all_tasks_blocked()
    assert [(c.state, c.intro) for c in await bob.messenger.contacts()] == [
        ("request_received", "second")
    ]
    bob.node.deliver(bob.node.pubsub_topic(0), late_withdrawal)
    await trio.testing.wait_all_tasks_blocked()
    assert [(c.state, c.intro) for c in await bob.messenger.contacts()] == [
        ("request_received", "second")
    ]


async def test_a_withdrawal_that_comes_before_its_request_withdraws_it_when_it_comes(
    peers: Peers, autojump_clock: Any
) -> None:
    # Relay brings the withdrawal; the request it withdraws comes later, from a store scan.
    # The withdrawal was ignored, and the request then showed as waiting until it expired.
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    alice_key = alice.messenger.identity().chat_key
    bob_key = bob.messenger.identity().chat_key
    alice.node.lose_next = 1  # the request is held up on the way
    await alice.messenger.add_contact(bob.messenger.identity().contact_link, "hi")
    _, late_request = alice.node.published[-1]
    await alice.messenger.cancel_contact_request(bob_key)
    await trio.testing.wait_all_tasks_blocked()
    assert await bob.messenger.contacts() == []  # nothing to show yet
    bob.node.deliver(bob.node.pubsub_topic(0), late_request, via="store")
    await trio.testing.wait_all_tasks_blocked()
    [withdrawn] = await bob.messenger.contacts()
    assert (withdrawn.chat_key, withdrawn.state, withdrawn.intro) == (
        alice_key,
        "cancelled_by_them",
        "hi",
    )
    assert bob.rejections() == []
    with pytest.raises(ev.NotPossible):  # nothing left to answer
        await bob.messenger.accept_contact(alice_key)
    # A new request of hers is a new request, and opens.
    await alice.messenger.add_contact(bob.messenger.identity().contact_link, "again")
    await trio.testing.wait_all_tasks_blocked()
    assert [(c.state, c.intro) for c in await bob.messenger.contacts()] == [
        ("request_received", "again")
    ]
