"""The messenger's scenarios on real nodes over loopback: one service node (relay + store)
and two clients with real SQLCipher profiles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat.messenger import Messenger

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]
WaitUntil = Callable[..., Awaitable[None]]


async def all_in_state(messenger: Messenger, chat_id: str, state: str, count: int) -> bool:
    mine = [m for m in await messenger.messages(chat_id, limit=500) if m.outgoing]
    return len(mine) == count and all(m.state == state for m in mine)


async def received_texts(messenger: Messenger, chat_id: str) -> list[str]:
    return [m.text for m in await messenger.messages(chat_id, limit=500) if not m.outgoing]


async def test_link_request_accept_and_twenty_messages_each_way_all_delivered(
    net: Any, befriend: Befriend, wait_until: WaitUntil
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
