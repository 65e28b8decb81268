"""Manual retries while offline (issue 15 item 3): they once spent an attempt each and
lengthened the backoff, then showed "attempt 18 of 8". Now a retry with no peer says so
and changes nothing; a failed message retried by hand gets a fresh budget and goes when
peers are back."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.fake_messengers import CONFIG, Peers, befriend, states, texts
from harness.waiting import wait_until

from chat import events as ev


async def test_retrying_a_queued_message_without_peers_says_so_and_spends_nothing(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.set_online(False)
    sent = await alice.messenger.send_text(chat_id, "are you there?")
    await trio.testing.wait_all_tasks_blocked()
    before = await alice.messenger.message(sent.id)
    assert (before.state, before.attempts, before.max_attempts) == ("queued", 1, 3)
    steps = len(await alice.messenger.trace(sent.id))
    for _ in range(5):
        with pytest.raises(ev.NotPossible, match="no peer to send it to right now"):
            await alice.messenger.retry(sent.id)
        await trio.testing.wait_all_tasks_blocked()
    after = await alice.messenger.message(sent.id)
    assert (after.attempts, after.next_attempt_at, after.total_attempts) == (
        before.attempts,
        before.next_attempt_at,
        1,
    )
    assert len(await alice.messenger.trace(sent.id)) == steps


async def test_a_failed_message_retried_offline_gets_a_fresh_budget_and_goes_when_peers_return(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.set_online(False)
    sent = await alice.messenger.send_text(chat_id, "into the void")

    async def failed() -> bool:
        return (await alice.messenger.message(sent.id)).state == "failed"

    await wait_until(failed, 600)  # virtual time: three tries with their backoff
    view = await alice.messenger.message(sent.id)
    assert (view.attempts, view.max_attempts, view.total_attempts) == (3, 3, 3)

    retried = await alice.messenger.retry(sent.id)
    assert (retried.state, retried.state_reason) == ("queued", "no peers")
    assert (retried.attempts, retried.max_attempts, retried.total_attempts) == (0, 3, 3)
    assert retried.next_attempt_at == pytest.approx(CONFIG.clock() + 10.0, abs=0.5)
    await trio.testing.wait_all_tasks_blocked()
    assert (await alice.messenger.message(sent.id)).total_attempts == 3  # nothing attempted

    # Retried by hand again and again, offline, for an hour: the count never passes 3 of 3.
    for _ in range(12):
        await trio.sleep(300)
        view = await alice.messenger.message(sent.id)
        assert view.attempts <= view.max_attempts
        if view.state == "failed":
            await alice.messenger.retry(sent.id)
        else:
            with pytest.raises(ev.NotPossible):
                await alice.messenger.retry(sent.id)

    alice.node.set_online(True)

    async def delivered() -> bool:
        return await states(alice, chat_id) == ["delivered"]

    await wait_until(delivered, limit=60)
    assert await texts(bob, chat_id) == ["into the void"]
