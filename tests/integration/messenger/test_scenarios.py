"""The messenger's scenarios on real nodes over loopback: one service node (relay + store)
and two clients with real SQLCipher profiles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from harness.waiting import wait_until

from chat.messenger import Messenger

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


async def all_in_state(messenger: Messenger, chat_id: str, state: str, count: int) -> bool:
    mine = [m for m in await messenger.messages(chat_id, limit=500) if m.outgoing]
    return len(mine) == count and all(m.state == state for m in mine)


async def received_texts(messenger: Messenger, chat_id: str) -> list[str]:
    return [m.text for m in await messenger.messages(chat_id, limit=500) if not m.outgoing]


async def test_link_request_accept_and_twenty_messages_each_way_all_delivered(
    net: Any, befriend: Befriend
) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    for i in range(20):
        await alice.send_text(chat_id, f"alice {i}")
        await bob.send_text(chat_id, f"bob {i}")

    async def everything_delivered() -> bool:
        return await all_in_state(alice, chat_id, "delivered", 20) and await all_in_state(
            bob, chat_id, "delivered", 20
        )

    await wait_until(everything_delivered, 60)
    assert await received_texts(bob, chat_id) == [f"alice {i}" for i in range(20)]
    assert await received_texts(alice, chat_id) == [f"bob {i}" for i in range(20)]
    first = (await alice.messages(chat_id, limit=500))[0]
    steps = await alice.trace(first.id)
    assert steps[0].to_state == "queued"
    assert "sent" in [s.to_state for s in steps] and steps[-1].to_state == "delivered"
    sent = next(s for s in steps if s.to_state == "sent")
    assert sent.evidence["peers_reached"] >= 1 and len(sent.evidence["waku_hash"]) == 64
    assert steps[-1].evidence["ack_from"] == bob.identity().chat_key
    assert steps[-1].evidence["ack_by"] in ("history", "bloom")


async def test_a_stopped_recipient_gets_everything_from_store_in_order_and_once(
    net: Any, befriend: Befriend
) -> None:
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    await net.stop("bob")
    for i in range(20):
        await alice.send_text(chat_id, f"while you were away {i}")
    await wait_until(lambda: all_in_state(alice, chat_id, "stored", 20), 60)

    bob = await net.start("bob")
    expected = [f"while you were away {i}" for i in range(20)]

    async def bob_has_all() -> bool:
        return await received_texts(bob, chat_id) == expected

    await wait_until(bob_has_all, 60)
    await wait_until(lambda: all_in_state(alice, chat_id, "delivered", 20), 60)
    assert await received_texts(bob, chat_id) == expected  # each once, in order
    steps = await alice.trace((await alice.messages(chat_id, limit=1))[0].id)
    stored = next(s for s in steps if s.to_state == "stored")
    assert stored.evidence["store_node"] == str(net.service.node.host.peer_id)
    assert (await bob.chats())[0].unread == 20


async def test_messages_handled_before_a_restart_are_not_refused_when_a_scan_lists_them_again(
    net: Any, befriend: Befriend
) -> None:
    """The catch-up after a restart scans back over what was already handled (its window
    overlaps the last one). Those messages cannot be decrypted twice (Olm keys are single-
    use), so the messenger must know them as handled: no 'replayed message' refusals, no
    copies."""
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    for i in range(5):
        await alice.send_text(chat_id, f"before the restart {i}")
    await wait_until(lambda: all_in_state(alice, chat_id, "delivered", 5), 30)
    await net.stop("bob")  # within the scan overlap of the messages above
    bob = await net.start("bob")

    async def caught_up() -> bool:  # the start's catch-up listed the window and fetched
        return bob.health().last_catch_up is not None and bob.checks.fetches_pending == 0

    await wait_until(caught_up, 30)
    assert bob.rejected == 0
    assert await received_texts(bob, chat_id) == [f"before the restart {i}" for i in range(5)]


async def test_without_peers_messages_wait_visibly_then_fail_and_a_manual_retry_delivers(
    net: Any, befriend: Befriend, free_port: Callable[[], int]
) -> None:
    from chat.reliability.outbox import RetryPolicy
    from chat.waku.host import generate_node_key

    listen, key = f"/ip4/127.0.0.1/tcp/{free_port()}", generate_node_key()
    await net.start_service(listen, key)
    budget = RetryPolicy(max_attempts=3, first_delay=0.3, max_delay=1.0, ack_timeout=3.0)
    alice = await net.start("alice", retry=budget)
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    await net.stop("service")

    async def alone() -> bool:
        return alice.health().status == "offline"

    await wait_until(alone)
    sent = [await alice.send_text(chat_id, f"into the void {i}") for i in range(3)]
    assert all(m.state == "queued" for m in sent)

    async def waiting_with_a_schedule() -> bool:
        views = [await alice.message(m.id) for m in sent]
        return all(
            v.state == "queued"
            and v.attempts >= 1
            and v.next_attempt_at is not None
            and v.state_reason == "no peers"
            and v.max_attempts == 3
            for v in views
        )

    await wait_until(waiting_with_a_schedule)
    await wait_until(lambda: all_in_state(alice, chat_id, "failed", 3))
    failed = await alice.message(sent[0].id)
    assert failed.state_reason == "no peers" and failed.next_attempt_at is None
    outbox = await alice.outbox()
    assert {i.id for i in outbox if i.kind == "message"} == {m.id for m in sent}

    await net.start_service(listen, key)

    async def reconnected() -> bool:
        return alice.health().status == "online" and bob.health().status == "online"

    await wait_until(reconnected, 60)
    for m in sent:
        assert (await alice.retry(m.id)).state == "queued"
    await wait_until(lambda: all_in_state(alice, chat_id, "delivered", 3), 60)
    assert await received_texts(bob, chat_id) == [f"into the void {i}" for i in range(3)]
    assert await alice.outbox() == []


async def test_tampered_replayed_and_forged_messages_are_rejected_and_never_shown(
    net: Any, befriend: Befriend
) -> None:
    import dataclasses
    import time

    import trio

    from chat.direct import Envelope, conversation_content_topic
    from chat.messenger.conversation import waku_message
    from chat.proto import direct_pb2
    from chat.reliability.sds import SdsChannel

    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    await alice.send_text(chat_id, "the real one")
    await wait_until(lambda: all_in_state(alice, chat_id, "delivered", 1))
    rejections = bob.subscribe()
    topic = conversation_content_topic(chat_id)
    bob_identity_key = bob.me.identity_key

    def publish(envelope: Envelope, stamp_offset: int = 0) -> None:
        message = waku_message(topic, envelope.encode(), time.time())
        message = dataclasses.replace(message, timestamp=message.timestamp + stamp_offset)
        alice.node.publish(alice.pubsub_topic, message)

    def sealed(frame_bytes: bytes) -> Envelope:
        assert alice.sessions is not None
        return alice.sessions.seal(
            bob_identity_key, direct_pb2.DirectPayload(sds_frame=frame_bytes)
        )

    async def next_rejection() -> str:
        with trio.fail_after(10):
            async for event in rejections:
                if event.kind == "rejected":
                    return str(event.reason)  # type: ignore[attr-defined]
        raise AssertionError("the event stream ended")

    # 1. Tampered ciphertext: one flipped byte.
    good = sealed(b"\x00")
    publish(
        dataclasses.replace(
            good, ciphertext=good.ciphertext[:-1] + bytes([good.ciphertext[-1] ^ 1])
        )
    )
    assert "decrypt" in await next_rejection()

    # 2. A replay: the exact ciphertext of a message Bob already read, in a new WakuMessage.
    body = direct_pb2.ChatMessage(id="f" * 32, text="replay me", sent_at_ms=int(time.time() * 1000))
    channel = SdsChannel(chat_id, alice.me.chat_key_text)
    frame = channel.wrap(body.SerializeToString(), "f" * 32, 10**12 + 1)
    once = sealed(frame.encode())
    publish(once)

    async def bob_read_it() -> bool:
        return "replay me" in await received_texts(bob, chat_id)

    await wait_until(bob_read_it)
    publish(once, stamp_offset=1)  # same ciphertext, new Waku hash: only Olm can tell
    assert "decrypt" in await next_rejection()

    # 3. An SDS frame whose sender is not the Olm-authenticated sender.
    forged_body = direct_pb2.ChatMessage(id="e" * 32, text="i am bob, honest", sent_at_ms=1)
    forger = SdsChannel(chat_id, bob.me.chat_key_text)
    forged = forger.wrap(forged_body.SerializeToString(), "e" * 32, 10**12 + 2)
    publish(sealed(forged.encode()))
    assert "sender" in await next_rejection()

    texts = await received_texts(bob, chat_id)
    assert texts == ["the real one", "replay me"]
    assert bob.rejected == 3


async def test_with_thirty_percent_of_relay_frames_lost_everything_arrives_and_states_stay_honest(
    net: Any, befriend: Befriend
) -> None:
    import random

    from chat.waku.relay.faults import RelayFaults

    faults = {name: RelayFaults(0.3, random.Random(seed)) for seed, name in enumerate("sab")}
    await net.start_service(faults=faults["s"])
    alice = await net.start("alice", faults=faults["a"])
    bob = await net.start("bob", faults=faults["b"])
    chat_id = await befriend(alice, bob)
    for i in range(20):
        await alice.send_text(chat_id, f"lossy a{i}")
        await bob.send_text(chat_id, f"lossy b{i}")
    archive = net.service.archive

    async def honest_so_far() -> bool:
        """No state claims more than the evidence shows, checked at every poll."""
        for me, them in ((alice, bob), (bob, alice)):
            theirs = {m.id for m in await them.messages(chat_id, limit=500) if not m.outgoing}
            for m in await me.messages(chat_id, limit=500):
                if not m.outgoing:
                    continue
                if m.state == "delivered":
                    assert m.id in theirs, f"{m.text} claimed delivered before it arrived"
                if m.state in ("stored", "delivered"):
                    steps = await me.trace(m.id)
                    for step in steps:
                        if "store_node" in step.evidence:  # a store confirmation
                            stored_hash = bytes.fromhex(step.evidence["waku_hash"])
                            assert archive.present([stored_hash]) == {stored_hash}
        delivered = [
            await all_in_state(alice, chat_id, "delivered", 20),
            await all_in_state(bob, chat_id, "delivered", 20),
        ]
        return all(delivered)

    # Each lost frame costs a re-send round (60 s without acknowledgement); some messages
    # need two or three rounds at 30 % loss on each of three nodes.
    await wait_until(honest_so_far, 300)
    assert sorted(await received_texts(bob, chat_id)) == sorted(f"lossy a{i}" for i in range(20))
    assert sorted(await received_texts(alice, chat_id)) == sorted(f"lossy b{i}" for i in range(20))
    assert all(f.dropped > 0 for f in faults.values())
