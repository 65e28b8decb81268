"""Changing our display name: validated, kept in the profile, in our link, and announced to
contacts (online ones at once, offline ones through the store)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from harness.waiting import wait_until

from chat.events import ChatUpdated, InvalidInput
from chat.identity import ContactLink
from chat.messenger import Messenger

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


async def test_a_name_is_sanitized_and_a_bad_one_is_refused(net: Any) -> None:
    alice = await net.start("alice")
    for bad in ("", "   ", "\u202e\u200b", "x" * 65):
        with pytest.raises(InvalidInput):
            await alice.set_display_name(bad)
    assert alice.identity().display_name == "Alice"
    view = await alice.set_display_name("  Alice\u202e  in\tWonderland\x07 ")
    assert view.display_name == "Alice in Wonderland"
    assert ContactLink.parse(view.contact_link).display_name == "Alice in Wonderland"
    assert alice.identity() == view
    await net.stop("alice")
    again = await net.start("alice")
    assert again.identity().display_name == "Alice in Wonderland"


async def test_contacts_learn_the_new_name_online_and_after_being_offline(
    net: Any, befriend: Befriend
) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    events = bob.subscribe()
    await alice.set_display_name("Ally")

    async def bob_sees(name: str) -> bool:
        contacts = await bob.contacts()
        chats = await bob.chats()
        return [c.display_name for c in contacts] == [name] and [c.name for c in chats] == [name]

    await wait_until(lambda: bob_sees("Ally"))
    renamed: list[str] = []
    with trio.move_on_after(5):  # the event came with the change; it is in the channel
        async for event in events:
            if isinstance(event, ChatUpdated):
                renamed.append(event.chat.name)
                if event.chat.name == "Ally":
                    break
    assert renamed[-1:] == ["Ally"]  # the chat list can show it without asking
    assert [c.state for c in await bob.contacts()] == ["mutual"]

    await net.stop("bob")
    await alice.set_display_name("Alice B.")
    bob = await net.start("bob")
    await wait_until(lambda: bob_sees("Alice B."))
    sent = await bob.send_text(chat_id, "nice name")

    async def delivered() -> bool:
        return (await bob.message(sent.id)).state == "delivered"

    await wait_until(delivered)
