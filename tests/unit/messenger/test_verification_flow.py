"""Emoji verification as control messages of the 1:1 conversation."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.fake_messengers import Peers, befriend

from chat import events as ev


async def test_both_confirm_the_same_emoji_and_both_keep_the_contact_verified(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    await befriend(alice, bob)
    alice_key = alice.messenger.identity().chat_key
    bob_key = bob.messenger.identity().chat_key
    bob.drain()

    assert (await alice.messenger.start_verification(bob_key)).state == "started"
    await trio.testing.wait_all_tasks_blocked()  # Bob answers with his key at once
    on_alice = alice.messenger.verification(bob_key)
    on_bob = bob.messenger.verification(alice_key)
    assert on_alice.state == on_bob.state == "compare"
    assert on_alice.emoji == on_bob.emoji and len(on_alice.emoji) == 7
    assert [e.verification.state for e in bob.drain() if isinstance(e, ev.VerificationUpdated)] == [
        "compare"
    ]

    await bob.messenger.confirm_verification(alice_key)
    await trio.testing.wait_all_tasks_blocked()
    assert (await alice.messenger.confirm_verification(bob_key)).state == "verified"
    await trio.testing.wait_all_tasks_blocked()
    assert bob.messenger.verification(alice_key).state == "verified"
    assert [c.verified for c in await alice.messenger.contacts()] == [True]
    assert [c.verified for c in await bob.messenger.contacts()] == [True]

    await peers.stop("alice")  # kept in the profile
    alice = await peers.start("alice")
    assert alice.messenger.verification(bob_key).state == "verified"


async def test_a_cancel_reaches_the_contact_and_only_contacts_can_verify(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    await befriend(alice, bob)
    bob_key = bob.messenger.identity().chat_key
    await alice.messenger.start_verification(bob_key)
    await trio.testing.wait_all_tasks_blocked()
    assert (await alice.messenger.cancel_verification(bob_key)).state == "cancelled"
    await trio.testing.wait_all_tasks_blocked()
    assert bob.messenger.verification(alice.messenger.identity().chat_key).state == "cancelled"

    with pytest.raises(ev.NotFound):
        await alice.messenger.start_verification(carol.messenger.identity().chat_key)
    with pytest.raises(ev.NotPossible):
        await alice.messenger.confirm_verification(bob_key)  # cancelled: nothing to confirm
