"""Private groups on the fake network and the mock clock: creating, inviting, joining,
messages delivered k of n with the evidence, membership changes and what each member can
read after them."""

from __future__ import annotations

from typing import Any

from harness.fake_messengers import Peers, Running, group_of
from harness.waiting import wait_until


async def texts(running: Running, chat_id: str, kind: str = "text") -> list[str]:
    """What others wrote in the chat (or its system lines), oldest first."""
    found = await running.messenger.messages(chat_id, limit=500)
    return [m.text for m in found if m.kind == kind and (kind == "system" or not m.outgoing)]


async def test_three_people_join_and_every_message_is_delivered_to_both_others(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    carol = await peers.start("carol")
    group_id = await group_of(alice, bob, carol)

    async def all_joined() -> bool:
        views = [await p.messenger.group(group_id) for p in (alice, bob, carol)]
        return all({m.state for m in v.members} == {"joined"} for v in views)

    await wait_until(all_joined)
    sent = [await p.messenger.send_text(group_id, f"hi from {n}") for n, p in
            (("alice", alice), ("bob", bob), ("carol", carol))]  # fmt: skip

    async def delivered() -> bool:
        views = [
            await p.messenger.message(m.id) for p, m in zip((alice, bob, carol), sent, strict=True)
        ]
        return all(v.state == "delivered" for v in views)

    await wait_until(delivered)
    for running, message in zip((alice, bob, carol), sent, strict=True):
        view = await running.messenger.message(message.id)
        assert view.recipients == 2 and len(view.delivered_to) == 2
        steps = await running.messenger.trace(message.id)
        assert steps[-1].evidence["delivered"] == "2/2"
        partial = [s for s in steps if s.evidence.get("acknowledged") == "1/2"]
        assert len(partial) == 1 and len(partial[0].evidence["missing"]) == 1
    assert await texts(bob, group_id) == ["hi from alice", "hi from carol"]
    assert await texts(carol, group_id) == ["hi from alice", "hi from bob"]
    lines = await texts(bob, group_id, "system")
    assert any("joined" in line for line in lines)
    assert alice.messenger.rejected == bob.messenger.rejected == carol.messenger.rejected == 0
    view = await bob.messenger.group(group_id)
    assert view.name == "Friends" and view.admins == [alice.messenger.identity().chat_key]
    chats = {c.id: c for c in await bob.messenger.chats()}
    assert chats[group_id].kind == "group" and chats[group_id].name == "Friends"
