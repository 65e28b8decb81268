"""Light mode on real nodes over loopback: a light client (filter + light push + store, no
relay) and relay clients chat 1:1 and in a group through two service nodes."""

from __future__ import annotations

import pytest
from harness.light_network import LightNet, light_node, light_ready
from harness.live_groups import accept_invitation, all_see, befriend, sent, texts
from harness.waiting import wait_until

from chat.messenger import Messenger
from chat.waku.enr.waku_fields import Capability, WakuPeer

pytestmark = pytest.mark.slow

EACH = 5


async def all_delivered(messenger: Messenger, chat_id: str, count: int, to: int = 1) -> bool:
    mine = await sent(messenger, chat_id)
    return len(mine) == count and all(
        m.state == "delivered" and len(m.delivered_to) == to for m in mine
    )


async def test_light_and_relay_clients_chat_one_to_one_and_in_a_group_all_delivered(
    light_net: LightNet,
) -> None:
    await light_net.start_services()
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    carl = await light_net.start("carl", light=False)
    await befriend(lena, rob)
    await wait_until(lambda: light_ready(lena))
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    for i in range(EACH):
        await lena.send_text(chat_id, f"lena {i}")
        await rob.send_text(chat_id, f"rob {i}")

    async def one_to_one_done() -> bool:
        return await all_delivered(lena, chat_id, EACH) and await all_delivered(rob, chat_id, EACH)

    await wait_until(one_to_one_done, 60)
    assert await texts(rob, chat_id) == [f"lena {i}" for i in range(EACH)]
    assert await texts(lena, chat_id) == [f"rob {i}" for i in range(EACH)]
    first = (await sent(lena, chat_id))[0]
    # The push's answer: "sent", or a step of a message its acknowledgement delivered first.
    sent_step = next(s for s in await lena.trace(first.id) if "light_push" in s.evidence)
    assert sent_step.evidence["light_push"] in light_node(lena).core.candidates
    assert sent_step.evidence["relay_peers"] >= 1

    await befriend(lena, carl)
    group = await lena.create_group("Friends", [rob.identity().chat_key, carl.identity().chat_key])
    group_id = group.id
    for member in (rob, carl):
        await accept_invitation(member, group_id)
    everyone = {m.identity().display_name: "joined" for m in (lena, rob, carl)}
    await all_see(group_id, everyone, lena, rob, carl)
    for i in range(EACH):
        await lena.send_text(group_id, f"lena g{i}")
        await carl.send_text(group_id, f"carl g{i}")

    async def group_done() -> bool:
        return await all_delivered(lena, group_id, EACH, 2) and await all_delivered(
            carl, group_id, EACH, 2
        )

    await wait_until(group_done, 90)
    assert [t for t in await texts(lena, group_id) if t.startswith("carl")] == [
        f"carl g{i}" for i in range(EACH)
    ]
    assert [t for t in await texts(rob, group_id) if t.startswith("lena")] == [
        f"lena g{i}" for i in range(EACH)
    ]
    assert light_node(lena).relay_peers()  # no relay: the push nodes stand in

    async def all_services_held() -> bool:
        # A push node whose relay has no peer on a topic answers 505 and honestly counts as
        # not held for pushing ("push 1/2"); filter and store are held on both.
        line = lena.health().light_line
        return line.startswith("filter 2/2, push ") and line.endswith(", store ok")

    await wait_until(all_services_held, what=lambda: lena.health().light_line)
    assert lena.health().mode == "light" and rob.health().mode == "relay"
    assert rob.health().light_line == ""
    # Each node's record is in /v1/health: signed, naming the node, what it serves.
    lena_record = WakuPeer.from_text(lena.health().enr)
    assert lena_record.peer_id == light_node(lena).node.host.peer_id
    assert not lena_record.serves(Capability.RELAY)
    assert WakuPeer.from_text(rob.health().enr).serves(Capability.RELAY)
