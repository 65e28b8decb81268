"""What the messenger refuses, with a sentence, and what it repairs (issue 13 items 6 and 8):
replies to messages that are not there, text that is invisible or not Unicode, intros over
the limit; and a reference received from a peer that names nothing is dropped, not kept."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import trio
from harness.fake_messengers import Peers, befriend, texts
from harness.waiting import wait_until

from chat import events as ev
from chat.messenger import MAX_INTRO_LENGTH
from chat.proto import direct_pb2

LONE = "\ud800"
SMILE_PAIR = "\ud83d\ude00"  # a surrogate pair, as JSON or a terminal may hand it over


async def test_a_reply_must_name_a_message_of_the_same_chat(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    chat_id = await befriend(alice, bob)
    other_chat = await befriend(carol, alice)
    elsewhere = await alice.messenger.send_text(other_chat, "in the other chat")
    first = await alice.messenger.send_text(chat_id, "first")
    for reply_to in ("0" * 32, "../../etc/passwd", "x" * 65_396, elsewhere.id, f"a{LONE}"):
        with pytest.raises(ev.InvalidInput) as refused:
            await alice.messenger.send_text(chat_id, "a reply", reply_to=reply_to)
        assert "reply_to" in str(refused.value)
    reply = await alice.messenger.send_text(chat_id, "a reply", reply_to=first.id)
    assert reply.reply_to == first.id
    await wait_until(lambda: _arrived(bob, chat_id, 2))
    [_, received] = await bob.messenger.messages(chat_id)
    assert (received.text, received.reply_to) == ("a reply", first.id)


async def test_a_received_reply_to_nothing_is_kept_without_its_reference(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    # A modified client sends what ours refuses: references to nothing, and a path.
    sending = alice.messenger._sending
    conversation = alice.messenger._direct._conversations.get(chat_id)
    assert conversation is not None
    for text, reply_to in (("one", "f" * 32), ("two", "../../etc/passwd"), ("three", "x" * 9999)):
        message_id = secrets.token_hex(16)
        body = direct_pb2.ChatMessage(id=message_id, text=text, reply_to=reply_to, sent_at_ms=1)
        async with alice.messenger._lock:
            await sending.submit(
                conversation, message_id, body.SerializeToString(), text=text, reply_to=None, now=1
            )
    alice.messenger._scheduler.wake()
    await wait_until(lambda: _arrived(bob, chat_id, 3))
    received = await bob.messenger.messages(chat_id)
    assert [(m.text, m.reply_to) for m in received] == [
        ("one", None),
        ("two", None),
        ("three", None),
    ]


async def _arrived(running: Any, chat_id: str, count: int) -> bool:
    return len(await texts(running, chat_id)) == count


async def test_text_must_be_visible_and_unicode_and_pairs_are_joined(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    for invisible in ("", "   ", "\u200b\u200b\u200b", "\u200d", "\u2060\ufeff\u200e"):
        with pytest.raises(ev.InvalidInput, match="empty"):
            await alice.messenger.send_text(chat_id, invisible)
    with pytest.raises(ev.InvalidInput) as refused:
        await alice.messenger.send_text(chat_id, f"half {LONE} a pair")
    assert str(refused.value) == (
        "a message is not Unicode text: it has a lone surrogate (U+D800) at character 6"
    )
    sent = await alice.messenger.send_text(chat_id, f"smile {SMILE_PAIR}")
    assert sent.text == "smile \U0001f600"
    await wait_until(lambda: _arrived(bob, chat_id, 1))
    assert await texts(bob, chat_id) == ["smile \U0001f600"]


async def test_an_intro_over_the_limit_is_refused_naming_it_and_nothing_is_sent(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    bob_link = bob.messenger.identity().contact_link
    with pytest.raises(ev.InvalidInput) as refused:
        await alice.messenger.add_contact(bob_link, "x" * 60_000)
    assert f"at most {MAX_INTRO_LENGTH} characters" in str(refused.value)
    assert alice.node.published == [] and await alice.messenger.contacts() == []
    # Invisible characters do not count; a pair is one character and keeps its emoji.
    exactly = "y" * (MAX_INTRO_LENGTH - 2) + "\u200b" * 50 + SMILE_PAIR
    asked = await alice.messenger.add_contact(bob_link, exactly)
    assert asked.intro == "y" * (MAX_INTRO_LENGTH - 2) + "\U0001f600"
    await trio.testing.wait_all_tasks_blocked()
    [request] = await bob.messenger.contacts()
    assert request.intro == asked.intro


async def test_a_display_name_keeps_its_emoji_and_refuses_nothing_but_names(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    assert (await alice.messenger.set_display_name(f"Alice {SMILE_PAIR}")).display_name == (
        "Alice \U0001f600"
    )
    with pytest.raises(ev.InvalidInput, match="cannot be empty"):
        await alice.messenger.set_display_name("\u200b")


async def test_the_verification_of_someone_who_is_not_a_contact_is_not_found(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    for chat_key in ("cw1nobody", bob.messenger.identity().chat_key):
        with pytest.raises(ev.NotFound, match="no contact"):
            alice.messenger.verification(chat_key)
    await befriend(alice, bob)
    assert alice.messenger.verification(bob.messenger.identity().chat_key).state == "none"


async def _send_as_a_modified_client(running: Any, chat_id: str, body: Any) -> None:
    """Queue `body` (a ChatMessage) as it is: what a client other than ours may send."""
    conversation = running.messenger._direct._conversations.get(chat_id)
    assert conversation is not None
    async with running.messenger._lock:
        await running.messenger._sending.submit(
            conversation, body.id, body.SerializeToString(), text=body.text, reply_to=None, now=1
        )
    running.messenger._scheduler.wake()


async def test_a_contact_cannot_stop_the_messenger_with_an_impossible_sent_time(
    peers: Peers, autojump_clock: Any
) -> None:
    """`sent_at_ms` is any uint64 on the wire; SQLite holds at most 2^63 - 1. A time that has
    not come yet is shown as the time the message arrived; a time a little ahead (clock
    skew) or in the past is kept as sent."""
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    now_ms = int(bob.messenger._ctx.clock() * 1000)
    claims = {
        "beyond uint64's half": 2**64 - 1,
        "exactly 2^63": 2**63,
        "next year": now_ms + 365 * 86_400_000,
        "a minute ahead": now_ms + 60_000,
        "yesterday": now_ms - 86_400_000,
    }
    for text, sent_at_ms in claims.items():
        body = direct_pb2.ChatMessage(id=secrets.token_hex(16), text=text, sent_at_ms=sent_at_ms)
        await _send_as_a_modified_client(alice, chat_id, body)
    await wait_until(lambda: _arrived(bob, chat_id, len(claims)))
    received = {m.text: m for m in await bob.messenger.messages(chat_id)}
    for text in ("beyond uint64's half", "exactly 2^63", "next year"):
        assert received[text].timestamp == received[text].received_at
    assert received["a minute ahead"].timestamp == claims["a minute ahead"] / 1000
    assert received["yesterday"].timestamp == claims["yesterday"] / 1000
    # Bob's messenger still runs: a message sent after these arrives.
    await alice.messenger.send_text(chat_id, "still there?")
    await wait_until(lambda: _arrived(bob, chat_id, len(claims) + 1))
