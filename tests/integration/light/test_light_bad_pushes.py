"""A service node that pushes filter messages for topics the light client never asked for:
the pushes are ignored (nothing reaches the messenger) and the node is dropped as a service
node; the chat carries on over the others."""

from __future__ import annotations

import pytest
from harness.light_network import LightNet, light_node, light_ready
from harness.live_groups import befriend, sent, texts
from harness.waiting import wait_until
from libp2p.custom_types import TProtocol

from chat.waku.filter.wire import PUSH_PROTOCOL, MessagePush
from chat.waku.framing import write_frame
from chat.waku.message import WakuMessage, now_ns

pytestmark = pytest.mark.slow


async def test_pushes_for_topics_never_asked_are_ignored_and_the_node_dropped(
    light_net: LightNet,
) -> None:
    await light_net.start_services(3)
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    await wait_until(lambda: light_ready(lena))
    light = light_node(lena)
    bad_peer = light.filter.core.active_peers[0]
    bad = light_net.services[light_net.service_named(bad_peer)].node.host.libp2p
    pubsub = light.pubsub_topics[0]
    stream = await bad.new_stream(light.node.host.peer_id, [TProtocol(PUSH_PROTOCOL)])
    for i in range(3):
        message = WakuMessage(
            payload=b"not for you %d" % i,
            content_topic="/spam/1/never-asked/proto",
            timestamp=now_ns(),
        )
        await write_frame(stream, MessagePush(message, pubsub).encode())
    await stream.close()

    async def dropped() -> bool:
        return bad_peer in light.core.dropped and await light_ready(lena)

    await wait_until(dropped, 30)
    assert light.filter.push_errors["unrequested"] == 3
    assert bad_peer not in light.filter.core.active_peers
    assert bad_peer not in light.push.pool.candidates

    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    await rob.send_text(chat_id, "still here")
    await lena.send_text(chat_id, "me too")

    async def delivered() -> bool:
        mine = await sent(lena, chat_id)
        return bool(mine) and mine[-1].state == "delivered"

    await wait_until(delivered, 30)
    assert await texts(lena, chat_id) == ["still here"]
