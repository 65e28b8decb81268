"""The receiving half of the pipeline: dedupe by Waku hash, the sender the crypto proved,
refusals that never reach the user, gaps filled from the store."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from harness.fake_messengers import Peers, Running, befriend, states, texts
from harness.waiting import wait_until

from chat import events as ev
from chat.direct import conversation_content_topic, request_payload
from chat.messenger.conversation import waku_message
from chat.proto import direct_pb2
from chat.reliability.sds import SdsChannel
from chat.waku.message import WakuMessage


def _sealed(sender: Running, recipient: Running, payload: direct_pb2.DirectPayload) -> bytes:
    """A payload sealed by `sender` in its real Olm session with `recipient`."""
    sessions = sender.messenger.sessions
    assert sessions is not None
    return sessions.seal(recipient.messenger.me.identity_key, payload).encode()


def _chat_message(sender: Running, chat_id: str, text: str, message_id: str) -> bytes:
    """An SDS content frame carrying a chat message, as `sender`'s SDS id would send it."""
    body = direct_pb2.ChatMessage(id=message_id, text=text, sent_at_ms=1)
    channel = SdsChannel(chat_id, sender.messenger.me.chat_key_text)
    return channel.wrap(body.SerializeToString(), message_id, 10**12).encode()


def _hand_over(recipient: Running, chat_id: str, payload: bytes, via: str = "relay") -> None:
    message = waku_message(conversation_content_topic(chat_id), payload, 1_700_000_000.0)
    recipient.node.deliver(recipient.messenger.pubsub_topic, message, via)


async def test_a_copy_with_the_same_waku_hash_is_handled_once_also_after_a_restart(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    await alice.messenger.send_text(chat_id, "only once")

    async def bob_has_it() -> bool:
        return await texts(bob, chat_id) == ["only once"]

    await wait_until(bob_has_it)
    topic, message = alice.node.published[-1]
    for via in ("relay", "store"):
        bob.node.deliver(topic, message, via)
    await trio.testing.wait_all_tasks_blocked()

    await peers.stop("bob")  # a scan after a restart lists it again
    bob = await peers.start("bob")
    bob.node.deliver(topic, message, "store")
    await trio.testing.wait_all_tasks_blocked()
    # Olm message keys are used once: a second decryption would be refused as a replay.
    assert bob.messenger.rejected == 0 and bob.rejections() == []
    assert await texts(bob, chat_id) == ["only once"]


async def test_an_sds_frame_whose_sender_is_not_the_olm_sender_is_rejected_and_never_shown(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    bob.drain()
    # Alice seals (Olm proves it is her) a frame that claims to come from Bob himself.
    forged = _chat_message(bob, chat_id, "i am bob, honest", "e" * 32)
    _hand_over(bob, chat_id, _sealed(alice, bob, direct_pb2.DirectPayload(sds_frame=forged)))
    await trio.testing.wait_all_tasks_blocked()
    assert bob.rejections() == ["an SDS frame whose sender is not the Olm-authenticated sender"]
    assert await texts(bob, chat_id) == [] and bob.messenger.rejected == 1


async def test_refusals_are_reported_and_nothing_reaches_the_chat(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    chat_id = await befriend(alice, bob)
    await befriend(carol, bob)  # Carol holds an Olm session with Bob, but is not in this chat
    bob.drain()

    _hand_over(bob, chat_id, b"\x01not an envelope")
    from_carol = _chat_message(carol, chat_id, "let me in", "c" * 32)
    _hand_over(bob, chat_id, _sealed(carol, bob, direct_pb2.DirectPayload(sds_frame=from_carol)))
    request = request_payload(alice.messenger.me.contact_link(), "again?", "1-2")
    _hand_over(bob, chat_id, _sealed(alice, bob, request))
    _hand_over(bob, chat_id, _sealed(alice, bob, direct_pb2.DirectPayload(sds_frame=b"\xff")))
    await trio.testing.wait_all_tasks_blocked()

    reasons = bob.rejections()
    assert len(reasons) == 4 and bob.messenger.rejected == 4
    assert "not a chinwag envelope" in reasons[0]
    assert reasons[1] == "a chat message from someone who is not this chat's contact"
    assert reasons[2] == "a request payload on the wrong topic"
    assert reasons[3].startswith("bad SDS frame")
    assert await texts(bob, chat_id) == []


async def test_a_message_on_someone_elses_topic_is_ignored(
    peers: Peers, autojump_clock: Any
) -> None:
    bob = await peers.start("bob")
    bob.drain()
    other = WakuMessage(b"\x01whatever", "/chinwag/1/dm-someone-else/proto", timestamp=1)
    bob.node.deliver(bob.messenger.pubsub_topic, other)
    await trio.testing.wait_all_tasks_blocked()
    assert bob.messenger.rejected == 0
    assert [e for e in bob.drain() if not isinstance(e, ev.HealthUpdated)] == []


async def test_a_message_only_the_store_has_is_fetched_by_its_hint_and_shown_in_order(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    alice.node.peers_miss_next = 1  # the first reaches the store only
    await alice.messenger.send_text(chat_id, "first")
    await trio.testing.wait_all_tasks_blocked()
    await alice.messenger.send_text(chat_id, "second")  # names the first in its history

    async def both_delivered() -> bool:
        return await states(alice, chat_id) == ["delivered", "delivered"]

    await wait_until(both_delivered, limit=30)  # well before the next periodic scan (60 s)
    assert await texts(bob, chat_id) == ["first", "second"]
    fetched = [q for q in peers.network.store_client.queries if q.include_data]
    assert len(fetched) == 1


def _fail_to_store(running: Running, text: str) -> None:
    """Bob's profile DB refuses to store a message with this text (a real SQLite failure, as
    a full or failing disk would give), on his own connection only."""
    running.store.db.execute(
        "CREATE TEMP TRIGGER refuse_one BEFORE INSERT ON main.messages "
        f"WHEN NEW.body = '{text}' BEGIN SELECT RAISE(ABORT, 'the disk failed'); END"
    )


def _failures_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "chat.messenger.receive" and r.levelno == logging.ERROR and r.exc_info
    ]


async def test_a_message_whose_handling_fails_is_dropped_and_the_receive_loop_goes_on(
    peers: Peers, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    bob.drain()
    _fail_to_store(bob, "cannot be stored")
    await alice.messenger.send_text(chat_id, "cannot be stored")
    await alice.messenger.send_text(chat_id, "after it")
    await wait_until(lambda: _has_texts(bob, chat_id, ["after it"]))
    [reason] = bob.rejections()
    assert reason == (
        "a chat message could not be handled (IntegrityError) and was dropped;"
        " chinwag's log has the details"
    )
    [failure] = _failures_logged(caplog)
    assert failure.exc_info is not None and "the disk failed" in str(failure.exc_info[1])


async def test_a_message_released_after_waiting_that_fails_does_not_stop_the_messenger(
    peers: Peers, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler shows a message that waited too long for an earlier one; if storing it
    fails, that message is dropped, and the scheduler (every timer) goes on."""
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    bob.drain()
    _fail_to_store(bob, "waited in vain")
    # A frame naming an earlier one that never comes (a modified client's, or lost for good).
    channel = SdsChannel(chat_id, alice.messenger.me.chat_key_text)
    now_ms = int(bob.messenger._ctx.clock() * 1000)
    for message_id, text in (("a" * 32, "never arrives"), ("b" * 32, "waited in vain")):
        body = direct_pb2.ChatMessage(id=message_id, text=text, sent_at_ms=now_ms)
        frame = channel.wrap(body.SerializeToString(), message_id, now_ms)
        channel.mark_sent(message_id)
    _hand_over(
        bob, chat_id, _sealed(alice, bob, direct_pb2.DirectPayload(sds_frame=frame.encode()))
    )
    await trio.testing.wait_all_tasks_blocked()
    assert await texts(bob, chat_id) == []
    await trio.sleep(bob.messenger._ctx.config.give_up_missing_after + 60)
    assert any("released after waiting could not be handled" in r for r in bob.rejections())
    assert len(_failures_logged(caplog)) == 1
    await alice.messenger.send_text(chat_id, "later")
    await wait_until(lambda: _has_texts(bob, chat_id, ["later"]))


async def _has_texts(running: Running, chat_id: str, expected: list[str]) -> bool:
    return await texts(running, chat_id) == expected
