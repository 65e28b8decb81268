"""Emoji verification between two contacts over the real network."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from harness.waiting import wait_until

from chat.messenger import Messenger

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


async def test_both_see_the_same_emoji_and_both_confirming_verifies_both(
    net: Any, befriend: Befriend
) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    await befriend(alice, bob)
    a_key, b_key = alice.identity().chat_key, bob.identity().chat_key
    assert (await alice.start_verification(b_key)).state == "started"

    async def both_comparing() -> bool:
        return alice.verification(b_key).state == bob.verification(a_key).state == "compare"

    await wait_until(both_comparing)
    emoji = alice.verification(b_key).emoji
    assert len(emoji) == 7 and emoji == bob.verification(a_key).emoji
    assert (await bob.confirm_verification(a_key)).state == "confirmed"
    await alice.confirm_verification(b_key)

    async def both_verified() -> bool:
        return alice.verification(b_key).state == bob.verification(a_key).state == "verified"

    await wait_until(both_verified)
    assert [c.verified for c in await alice.contacts()] == [True]
    assert [c.verified for c in await bob.contacts()] == [True]


async def test_saying_the_emoji_differ_cancels_on_both_sides(net: Any, befriend: Befriend) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    await befriend(alice, bob)
    a_key, b_key = alice.identity().chat_key, bob.identity().chat_key
    await alice.start_verification(b_key)

    async def bob_comparing() -> bool:
        return bob.verification(a_key).state == "compare"

    await wait_until(bob_comparing)
    await bob.cancel_verification(a_key)

    async def alice_cancelled() -> bool:
        return alice.verification(b_key).state == "cancelled"

    await wait_until(alice_cancelled)
    assert not any(c.verified for c in await alice.contacts())
