"""The real `chinwag node --community LINK` as a subprocess: it protects the community's shard
with the link's key, and when a newer signed description names a new key (a ban) it switches
by itself: the old key's messages are refused from then on, the new key's pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
import trio
from harness.communities import NOW, person
from harness.processes import Chinwag
from harness.protected_shard import PROTECTED, SHARD, Member, message
from harness.waiting import wait_until

from chat.communities.channel import community_content_topic
from chat.communities.description import JoinPolicy, first_description, sign_description
from chat.communities.link import CommunityLink
from chat.communities.moderation import ban
from chat.communities.signer import OwnerKey
from chat.waku.message import WakuMessage, now_ns
from chat.waku.protected import ShardKeyPair

CLUSTER = 42
REJECTIONS = "chinwag_relay_protected_rejections_total"
Scrape = Callable[[str], Awaitable[dict[str, float]]]


@pytest.mark.slow
async def test_chinwag_node_follows_a_communitys_shard_key(
    chinwag: Chinwag, scrape: Scrape
) -> None:
    alice, bob = person("alice"), person("bob")
    owner_key, first_pair = OwnerKey.generate(), ShardKeyPair.generate()
    first = sign_description(
        owner_key,
        first_description(
            owner_key.chat_key, alice.key, "alice", alice.link, "Node", "", JoinPolicy.OPEN,
            CLUSTER, SHARD, first_pair.public_key.to_bytes(), ("general",), NOW,
        ),
    )  # fmt: skip
    members = first.next(NOW + 1, members=(*first.members, bob.as_member()))
    with_bob = sign_description(owner_key, members)
    outcome = ban(with_bob, alice.key, bob.key, NOW + 2)
    assert outcome.new_protection is not None
    banned = sign_description(owner_key, outcome.description)
    new_pair = outcome.new_protection
    link = CommunityLink.of(first).encode()
    publisher, subscriber = Member("publisher"), Member("subscriber")
    publisher.relay.sign_with(PROTECTED, first_pair)
    with trio.fail_after(90):
        node = await chinwag.start_node(extra=["--shard", "0", "--community", link])
        async with AsyncExitStack() as stack:
            for peer in (publisher, subscriber):
                await peer.node.mount(peer.relay)
                await stack.enter_async_context(peer.node.run())
                await peer.node.host.dial(node.addr)

            async def node_meshed() -> bool:
                return await node.mesh_peers(shard=SHARD) == 2

            await wait_until(node_meshed, 30, what="the node to mesh with both on the shard")
            assert publisher.relay.publish(PROTECTED, message("before")) == 1
            await subscriber.heard(1)
            # The owner's banning description, published under the old key as moderators do.
            topic = community_content_topic(first.id)
            publisher.relay.publish(
                PROTECTED, WakuMessage(banned.signed, topic, timestamp=now_ns())
            )

            async def rotated() -> bool:
                samples = await scrape(node.metrics_url)
                return (
                    samples.get(
                        f'chinwag_relay_protected_key_rotations_total{{topic="{PROTECTED}"}}'
                    )
                    == 1
                )

            await wait_until(rotated, 30, what="the node to switch to the new key by itself")
            stale = first_pair.sign(PROTECTED, message("old key"))
            publisher.relay.driver.publish(PROTECTED, stale.encode())

            async def refused() -> bool:
                samples = await scrape(node.metrics_url)
                series = f'{REJECTIONS}{{topic="{PROTECTED}",reason="signature_mismatch"}}'
                return samples.get(series) == 1

            await wait_until(refused, 30, what="the old key's message to be refused")
            publisher.relay.sign_with(PROTECTED, new_pair)
            publisher.relay.publish(PROTECTED, message("new key"))
            await subscriber.heard(3)  # before, the description, new key
            samples = await scrape(node.metrics_url)
    assert [p for p in subscriber.payloads if p in (b"before", b"old key", b"new key")] == [
        b"before",
        b"new key",
    ]
    key_series = (
        f'chinwag_relay_protected_shard_key{{topic="{PROTECTED}",'
        f'key="{new_pair.public_key.to_hex()}"}}'
    )
    assert samples[key_series] == 1
