"""A 1:1 chat's telemetry reference (`conv_ref`) comes from a pair secret the two people made
in their encrypted contact request and answer (docs/protocol.md, "Pair secret"): both ends
compute the same one, across restarts and for crossed requests, and nothing public (their
contact links, chat keys, the chat id) gives it."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import pytest
from harness.waiting import wait_until

from chat.identity import ContactLink
from chat.messenger import Messenger
from chat.telemetry import identifiers

from .conftest import Net

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


def conv_ref_of(messenger: Messenger, chat_id: str) -> str:
    found = messenger.conversation_secret(chat_id)
    assert found is not None
    return identifiers.conv_ref(identifiers.telemetry_key(found[1]))


def refs_from_public(*messengers: Messenger) -> set[str]:
    """Every reference an outsider holding both contact links could try: the pair of chat
    keys (the scheme before the pair secret), the links, their bodies' keys, the chat id."""
    links = [ContactLink.parse(m.identity().contact_link) for m in messengers]
    keys = sorted(link.chat_key_text for link in links)
    candidates = [
        "\n".join(keys).encode(),
        "\n".join(sorted(m.identity().contact_link for m in messengers)).encode(),
        b"".join(sorted(link.identity_key for link in links)),
        b"".join(sorted(link.chat_key for link in links)),
        hashlib.sha256("\n".join(keys).encode()).digest(),
    ]
    return {identifiers.conv_ref(identifiers.telemetry_key(c)) for c in candidates}


async def test_both_ends_share_a_reference_the_public_links_do_not_give(
    net: Net, befriend: Befriend
) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    public = refs_from_public(alice, bob) | {
        identifiers.conv_ref(identifiers.telemetry_key(chat_id.encode()))
    }
    links = [alice.identity().contact_link, bob.identity().contact_link]
    ref = conv_ref_of(alice, chat_id)
    assert conv_ref_of(bob, chat_id) == ref
    assert ref not in public
    secret = alice.conversation_secret(chat_id)
    assert secret is not None
    # The two random halves appear in no public link, in any form.
    halves = secret[1].removeprefix(b"direct-pair\n")
    assert len(halves) == 64
    for link in links:
        body = ContactLink.parse(link)
        for half in (halves[:32], halves[32:]):
            assert half.hex() not in link and half not in body.identity_key + body.chat_key

    # Saved with the contact: the same reference after both apps restart.
    for name in ("alice", "bob"):
        await net.stop(name)
    alice = await net.start("alice")
    bob = await net.start("bob")
    assert conv_ref_of(alice, chat_id) == conv_ref_of(bob, chat_id) == ref


@pytest.mark.slow
async def test_crossed_requests_give_both_ends_one_reference(net: Net) -> None:
    """Each asks the other before seeing the other's request: each side's request carries
    its half, both answers too; both compute one reference."""
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    await alice.add_contact(bob.identity().contact_link, "hi")
    await bob.add_contact(alice.identity().contact_link, "hi")

    async def chat_on_both() -> bool:
        for messenger in (alice, bob):
            if not any(c.kind == "direct" for c in await messenger.chats()):
                return False
        return True

    await wait_until(chat_on_both, 60)
    chat_id = next(c.id for c in await alice.chats() if c.kind == "direct")

    def agreed() -> bool:
        return conv_ref_of(alice, chat_id) == conv_ref_of(bob, chat_id)

    await wait_until(agreed, 30)
    assert conv_ref_of(alice, chat_id) not in refs_from_public(alice, bob)
