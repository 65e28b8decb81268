"""Light mode failover on real nodes: the light client's filter node and then its push node
are stopped mid-conversation; subscriptions and sends move to the other service nodes and
nothing is lost or left stuck (the store check fills any gap)."""

from __future__ import annotations

import logging

import pytest
from harness.light_network import LightNet, light_node, light_ready
from harness.live_groups import befriend, sent, texts
from harness.waiting import wait_until

from chat.messenger import Messenger

pytestmark = pytest.mark.slow


async def all_delivered(messenger: Messenger, chat_id: str, count: int) -> bool:
    mine = await sent(messenger, chat_id)
    return len(mine) == count and all(m.state == "delivered" for m in mine)


async def test_filter_and_push_nodes_lost_mid_conversation_nothing_lost_or_stuck(
    light_net: LightNet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chat.light_node")
    await light_net.start_services(3)
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    await wait_until(lambda: light_ready(lena))
    light = light_node(lena)
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    await lena.send_text(chat_id, "lena 0")
    await rob.send_text(chat_id, "rob 0")
    await wait_until(lambda: all_delivered(lena, chat_id, 1))

    # The filter node goes: its subscriptions move to the third node.
    filter_peer = light.filter.core.active_peers[0]
    await light_net.stop(light_net.service_named(filter_peer))
    for i in range(1, 6):
        await rob.send_text(chat_id, f"rob {i}")
        await lena.send_text(chat_id, f"lena {i}")

    async def moved() -> bool:
        active = light.filter.core.active_peers
        return filter_peer not in active and await light_ready(lena)

    await wait_until(moved, 30)
    assert light.core.failovers >= 1
    assert any(
        f"lost service node {filter_peer}; failing over" in r.getMessage() for r in caplog.records
    )

    # A push node goes too: sends fail over to what is left.
    push_peer = light.push.pool.active[0]
    await light_net.stop(light_net.service_named(push_peer))
    for i in range(6, 11):
        await rob.send_text(chat_id, f"rob {i}")
        await lena.send_text(chat_id, f"lena {i}")

    async def everything_delivered() -> bool:
        return await all_delivered(lena, chat_id, 11) and await all_delivered(rob, chat_id, 11)

    await wait_until(everything_delivered, 90)
    assert await texts(lena, chat_id) == [f"rob {i}" for i in range(11)]  # once, in order
    assert await texts(rob, chat_id) == [f"lena {i}" for i in range(11)]
    last = (await sent(lena, chat_id))[-1]
    # The push's answer: "sent", or a step of a message its acknowledgement delivered first
    # (then the answer may still be on its way when the message shows delivered).

    async def push_answered() -> bool:
        return any("light_push" in s.evidence for s in await lena.trace(last.id))

    await wait_until(push_answered, 30)
    sent_step = next(s for s in await lena.trace(last.id) if "light_push" in s.evidence)
    assert sent_step.evidence["light_push"] not in (filter_peer, push_peer)
    health = light.light_health()
    assert health.filter_held == 1 and health.degraded  # one service node left of three
    assert "filter 1/2" in health.line()
    view = lena.health()  # what /v1/health and the health bar show
    assert view.mode == "light" and view.status == "degraded"
    assert view.light_line.startswith("filter 1/2, push 1/2")
    assert view.light_services["filter_held"] == 1
