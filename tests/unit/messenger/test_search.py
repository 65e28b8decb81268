"""Message search through the messenger (issue 15 item 11): results name their chat by the
contact's current name, the snippet's matches are offsets, bad queries are sentences."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.fake_messengers import Peers, befriend

from chat import events as ev


async def test_search_finds_messages_in_every_chat_or_one_with_the_chat_name(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    with_bob = await befriend(alice, bob)
    with_carol = await befriend(carol, alice)  # (the asker has one contact)
    await alice.messenger.send_text(with_bob, "the blue bicycle is in the shed")
    await bob.messenger.send_text(with_bob, "thanks, found the bicycle")
    await alice.messenger.send_text(with_carol, "a red bicycle for you")
    await trio.testing.wait_all_tasks_blocked()

    found = await alice.messenger.search("bicycle")
    assert {(r.chat_name, r.text) for r in found} == {
        ("Bob", "the blue bicycle is in the shed"),
        ("Bob", "thanks, found the bicycle"),
        ("Carol", "a red bicycle for you"),
    }
    first = found[0]
    assert [first.snippet[a:b].lower() for a, b in first.highlights] == ["bicycle"]
    received = next(r for r in found if r.text.startswith("thanks"))
    assert not received.outgoing and received.sender == bob.messenger.identity().chat_key
    assert received.message_id in {m.id for m in await alice.messenger.messages(with_bob)}

    only_carol = await alice.messenger.search("bicycle", chat_id=with_carol)
    assert [r.text for r in only_carol] == ["a red bicycle for you"]
    assert [r.text for r in await alice.messenger.search("blue bicy*")] == [
        "the blue bicycle is in the shed"
    ]
    assert await alice.messenger.search("bicycle", limit=1) == found[:1]


@pytest.mark.parametrize(
    ("query", "kwargs", "error", "words"),
    [
        ("   ", {}, ev.InvalidInput, "type a word to search for"),
        ("x" * 201, {}, ev.InvalidInput, "at most 200 characters"),
        ("bicycle", {"limit": 0}, ev.InvalidInput, "limit must be between 1 and 100"),
        ("bicycle", {"chat_id": "f" * 32}, ev.NotFound, "no chat"),
    ],
)
async def test_a_search_that_cannot_be_done_is_a_sentence(
    peers: Peers, autojump_clock: Any, query: str, kwargs: Any, error: type, words: str
) -> None:
    alice = await peers.start("alice")
    with pytest.raises(error, match=words):
        await alice.messenger.search(query, **kwargs)


async def test_reading_on_from_a_result(peers: Peers, autojump_clock: Any) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    for n in range(5):
        await alice.messenger.send_text(chat_id, f"message number {n}")
        await trio.sleep(1)
    [hit] = await alice.messenger.search("number 1")
    after = await alice.messenger.messages(chat_id, after=hit.message_id, limit=2)
    assert [m.text for m in after] == ["message number 2", "message number 3"]
    with pytest.raises(ev.InvalidInput, match="not both"):
        await alice.messenger.messages(chat_id, before=hit.message_id, after=hit.message_id)
