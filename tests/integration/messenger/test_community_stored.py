"""A channel message on a protected shard is tracked by the hash of the message as
published, signature included: the hash store nodes list, so the sender's `stored` check
and the members' fetches by SDS retrieval hint find it. Real nodes on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from harness.live_communities import serve_shard
from harness.waiting import wait_until

pytestmark = pytest.mark.slow


async def test_channel_messages_on_a_protected_shard_are_tracked_by_their_stored_hash(
    net: Any,
) -> None:
    service = await net.start_service()
    alice = await net.start("alice")
    community = await alice.create_community("Birders", "", "open", ["general"])
    assert community.protection_key
    serve_shard(service, community)
    channel = community.channels[0].id
    for i in range(3):
        await alice.send_text(channel, f"hello {i}")

    async def sent_hashes() -> list[bytes]:
        hashes = []
        for message in await alice.messages(channel, limit=50):
            for step in await alice.trace(message.id):
                if step.to_state == "sent":
                    hashes.append(bytes.fromhex(step.evidence["waku_hash"]))
        return hashes

    async def all_sent() -> bool:
        return len(await sent_hashes()) == 3

    await wait_until(all_sent, 30)
    hashes = await sent_hashes()
    service_id = service.node.host.peer_id

    async def all_kept() -> bool:
        return await alice.node.store.present(service_id, hashes) == set(hashes)

    await wait_until(all_kept, 30)
