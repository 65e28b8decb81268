"""Contact-request spam over real py-libp2p relay on loopback (issue 13 item 4): a spammer
node floods Bob's request partition with requests from fresh identities while Alice, his
contact, keeps writing. Wall time is never asserted (tests/bench/attack_spam.py measures
it): what must hold is that every message is shown, in order, that the requests kept never
exceed the cap, and that every request not kept is counted as dropped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from harness.fast import LOOPBACK
from harness.spam import crafted_requests, on_partition
from harness.waiting import wait_until

from chat.client_node import ClientNode, ClientNodeConfig
from chat.messenger import Messenger
from chat.request_budget import StrangerPolicy
from chat.waku.message import now_ns


@pytest.mark.slow
async def test_over_real_relay_contact_messages_arrive_in_order_while_strangers_flood(
    net: Any, befriend: Callable[[Messenger, Messenger], Awaitable[str]]
) -> None:
    policy = StrangerPolicy(rate=5.0, burst=10, max_held=25, report_every=1.0)
    await net.start_service()
    alice = await net.start("alice")
    bob = await net.start("bob", strangers=policy)
    chat_id = await befriend(alice, bob)
    alice_key = alice.identity().chat_key
    bob_link = bob.identity().contact_link
    spam = crafted_requests(bob_link, 300)
    spammer = ClientNode(
        ClientNodeConfig(listen_addrs=(LOOPBACK,), peers=(net.service_addr(),), mdns=False)
    )
    async with spammer.run():

        async def spammer_meshed() -> bool:
            return sum(spammer.relay_peers().values()) > 0

        await wait_until(spammer_meshed)
        topic = spammer.pubsub_topic(0)
        sent = []
        for step in range(30):
            for payload in spam[step * 10 : (step + 1) * 10]:
                spammer.publish(topic, on_partition(bob_link, payload, now_ns()))
            text = f"message {step:02d}"
            await alice.send_text(chat_id, text)
            sent.append(text)
            await trio.sleep(0.1)
            assert bob.health().stranger_requests_held <= policy.max_held

        async def all_shown() -> bool:
            return len(await _texts(bob, chat_id)) == len(sent)

        await wait_until(all_shown, 60)
        assert await _texts(bob, chat_id) == sent

        async def every_request_accounted_for() -> bool:
            health = bob.health()
            return health.stranger_requests_dropped + health.stranger_requests_held == len(spam)

        await wait_until(every_request_accounted_for, 60)
    health = bob.health()
    strangers = [c for c in await bob.contacts() if c.chat_key != alice_key]
    assert len(strangers) == health.stranger_requests_held <= policy.max_held
    assert health.stranger_requests_dropped == len(spam) - len(strangers) > 0


async def _texts(messenger: Messenger, chat_id: str) -> list[str]:
    return [m.text for m in await messenger.messages(chat_id, limit=500) if not m.outgoing]
