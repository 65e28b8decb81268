"""A light client in a community on real nodes over loopback: the owner (a relay client)
creates an approval-only community on its protected shard; two service nodes follow it (as
`chinwag node --community LINK` does: they relay, keep and protect the shard); a light
client (filter + light push, no relay) asks to join, is accepted, and chats in the channel
with the owner both ways. What the light member pushes is signed with the shard's key, so
the service nodes refuse none of it."""

from __future__ import annotations

import argparse

import pytest
from harness.fast import FAST
from harness.light_network import LightNet, light_node, light_ready
from harness.live_communities import (
    channel_texts,
    fetched,
    received_requests,
    request_state,
    role_in,
)
from harness.waiting import wait_until

from chat.commands.node import follow, followers_from
from chat.waku.lightpush.wire import LightPushStatus

pytestmark = pytest.mark.slow

EACH = 3


async def test_light_client_joins_an_approval_community_and_chats_signed_with_the_owner(
    light_net: LightNet,
) -> None:
    services = await light_net.start_services()
    owner = await light_net.start("olga", light=False)
    lena = await light_net.start("lena", light=True)
    community = await owner.create_community("Birders", "", "approval", ["general"])
    link, _ = await owner.community_link(community.id)
    for service in services:
        (follower,) = followers_from(argparse.Namespace(community=[link]), FAST.cluster_id)
        service.relay.protect(follower.pubsub_topic, follower.key)
        follow(service.relay, [follower])
    await wait_until(lambda: light_ready(lena), 30)

    found = await fetched(lena, link)
    assert found.community is not None and found.community.name == "Birders"
    await lena.join_community(link, "light member here")
    (request,) = await received_requests(owner, community.id, 1)
    assert request.chat_key == lena.me.chat_key_text
    await owner.accept_community_request(request.id)

    async def accepted() -> bool:
        return (
            await role_in(lena, community.id) == "member"
            and await request_state(lena, community.id) == "accepted"
        )

    await wait_until(accepted, 60)
    light = light_node(lena)
    assert community.shard in light._shard_keys  # the light node signs on the shard now
    channel = community.channels[0].id
    for i in range(EACH):
        await lena.send_text(channel, f"lena {i}")
        await owner.send_text(channel, f"olga {i}")

    async def both_have_all() -> bool:
        for member in (owner, lena):
            if len(await channel_texts(member, channel)) < 2 * EACH:
                return False
        return True

    await wait_until(both_have_all, 60)
    for member in (owner, lena):
        found_texts = await channel_texts(member, channel)
        assert len(found_texts) == len(set(found_texts)) == 2 * EACH  # each once
        for name in ("lena", "olga"):
            assert [t for t in found_texts if t.startswith(name)] == [
                f"{name} {i}" for i in range(EACH)
            ]
    # The service nodes protect the shard and refused nothing there: no light push was
    # answered "invalid message" (an unsigned one would be) and the relays rejected nothing.
    taken = 0
    for service in services:
        validator = service.relay.validator
        assert validator.is_protected(community.shard)
        assert not [key for key in validator.protected_rejected if key[0] == community.shard]
        assert service.lightpush is not None
        answers = service.lightpush.responses
        assert not [key for key in answers if key[1] == LightPushStatus.INVALID_MESSAGE]
        taken += answers[("v3", LightPushStatus.SUCCESS)]
    assert taken >= EACH
