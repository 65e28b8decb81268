"""The sending half of the pipeline: outbox states with their evidence, the retry budget on
the mock clock, permanent refusals, re-sends for want of an acknowledgement."""

from __future__ import annotations

from typing import Any

import trio
from harness.fake_messengers import CONFIG, Peers, befriend, states, texts
from harness.waiting import wait_until

from chat import events as ev


async def test_a_message_goes_queued_sent_stored_delivered_with_evidence_for_each(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    bob.node.set_online(False)  # the store keeps the message; no acknowledgement yet
    alice.drain()

    sent = await alice.messenger.send_text(chat_id, "hello bob")
    assert sent.state == "queued"

    async def stored() -> bool:
        return await states(alice, chat_id) == ["stored"]

    await wait_until(stored)
    bob.node.set_online(True)  # Bob catches up from the store and acknowledges

    async def delivered() -> bool:
        return await states(alice, chat_id) == ["delivered"]

    await wait_until(delivered)
    steps = await alice.messenger.trace(sent.id)
    assert [s.to_state for s in steps] == ["queued", "sent", "stored", "delivered"]
    assert steps[1].evidence["peers_reached"] == 1 and steps[1].evidence["attempt"] == 1
    assert steps[2].evidence["store_node"] == str(peers.network.store_id)
    assert steps[2].evidence["waku_hash"] == steps[1].evidence["waku_hash"]
    assert steps[3].evidence["ack_from"] == bob.messenger.identity().chat_key
    updates = [e.message.state for e in alice.drain() if isinstance(e, ev.MessageUpdated)]
    assert updates == ["sent", "stored", "delivered"]
    assert await texts(bob, chat_id) == ["hello bob"]
    received = (await bob.messenger.messages(chat_id))[0]
    assert (await bob.messenger.trace(received.id))[0].evidence["via"] == "store"
    assert await alice.messenger.outbox() == []


async def test_without_peers_attempts_back_off_then_fail_and_a_manual_retry_delivers(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.set_online(False)
    start = CONFIG.clock()
    sent = await alice.messenger.send_text(chat_id, "into the void")
    await trio.testing.wait_all_tasks_blocked()

    # RetryPolicy: 10 s, then 20 s, and the third attempt is the last.
    schedule = []
    for due in (10.0, 30.0):
        view = await alice.messenger.message(sent.id)
        schedule.append((view.state, view.attempts, view.next_attempt_at, view.state_reason))
        await trio.sleep_until(trio.current_time() + (start + due - CONFIG.clock()) + 0.01)
    assert schedule == [
        ("queued", 1, start + 10.0, "no peers"),
        ("queued", 2, start + 30.0, "no peers"),
    ]
    failed = await alice.messenger.message(sent.id)
    assert (failed.state, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
    assert failed.state_reason == "no peers"
    assert [i.id for i in await alice.messenger.outbox()] == [sent.id]

    await trio.sleep(3600)  # a failed message waits for the user
    assert (await alice.messenger.message(sent.id)).attempts == 3

    alice.node.set_online(True)
    assert (await alice.messenger.retry(sent.id)).state == "queued"

    async def delivered() -> bool:
        return await states(alice, chat_id) == ["delivered"]

    await wait_until(delivered)
    assert await texts(bob, chat_id) == ["into the void"]


async def test_a_refused_message_fails_at_once_with_the_reason(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.refuse = "message too large"
    sent = await alice.messenger.send_text(chat_id, "x" * 100)
    await trio.testing.wait_all_tasks_blocked()
    view = await alice.messenger.message(sent.id)
    assert (view.state, view.state_reason, view.attempts) == ("failed", "message too large", 1)
    await trio.sleep(600)
    assert (await alice.messenger.message(sent.id)).attempts == 1  # retrying cannot help


async def test_a_message_lost_on_the_way_is_sent_again_after_the_ack_timeout(
    peers: Peers, autojump_clock: Any
) -> None:
    peers.network.store_keeps = False  # only relay: no store scan recovers it
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.lose_next = 1
    sent = await alice.messenger.send_text(chat_id, "second time lucky")
    await trio.sleep(29)
    assert await states(alice, chat_id) == ["sent"] and await texts(bob, chat_id) == []

    async def delivered() -> bool:
        return await states(alice, chat_id) == ["delivered"]

    await wait_until(delivered, limit=5)  # ack_timeout is 30 s
    attempts = [
        s.evidence["attempt"] for s in await alice.messenger.trace(sent.id) if s.to_state == "sent"
    ]
    assert attempts == [1, 2]
    assert await texts(bob, chat_id) == ["second time lucky"]


async def test_a_discarded_message_leaves_the_outbox_and_is_never_sent(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.set_online(False)
    sent = await alice.messenger.send_text(chat_id, "never mind")
    await trio.testing.wait_all_tasks_blocked()
    await alice.messenger.discard(sent.id)
    alice.node.set_online(True)
    await trio.sleep(600)
    view = await alice.messenger.message(sent.id)
    assert (view.state, view.state_reason) == ("failed", "discarded")
    assert await alice.messenger.outbox() == [] and await texts(bob, chat_id) == []
