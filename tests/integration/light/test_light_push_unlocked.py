"""A light push waits for its answer without the messenger's lock, on real nodes over
loopback: the service nodes take the light client's pushes and do not answer them (a gate
holds them, tests/harness/push_gate.py), and the client's push time limit is an hour, so the
first message's push waits as long as the test lets it. Meanwhile the person sends again, a
contact's message is shown, and a message is discarded; then the nodes answer and every
state is what the answers prove."""

from __future__ import annotations

import pytest
import trio
from harness.light_network import LightNet, light_node, light_ready
from harness.live_groups import befriend, sent, texts
from harness.push_gate import PushGate, hold_pushes
from harness.waiting import wait_until

from chat.messenger import Messenger
from chat.messenger.sending import MAX_PUSHES_IN_FLIGHT

pytestmark = pytest.mark.slow

AN_HOUR = 3600.0
LIVENESS = 30.0
"""A deadline for what must not wait for the push (it would otherwise wait an hour)."""


def pushes_in_flight(messenger: Messenger) -> frozenset[str]:
    return messenger._sending.pushes_in_flight()


def held(gates: list[PushGate]) -> int:
    return sum(g.waiting for g in gates)


async def test_a_push_with_no_answer_holds_up_no_send_receive_or_discard(
    light_net: LightNet,
) -> None:
    services = await light_net.start_services()
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    await wait_until(lambda: light_ready(lena))
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    light_node(lena).push.time_limit = AN_HOUR
    gates = [hold_pushes(s) for s in services]

    first = await lena.send_text(chat_id, "first")
    await wait_until(lambda: held(gates) >= 1, what="the first push at a service node")

    async def hello_shown() -> bool:
        return await texts(lena, chat_id) == ["hello"]

    with trio.fail_after(LIVENESS):
        second = await lena.send_text(chat_id, "second")
        await wait_until(lambda: pushes_in_flight(lena) == {first.id, second.id})
        await rob.send_text(chat_id, "hello")
        await wait_until(hello_shown, what="rob's message shown to lena")
        await lena.discard(first.id)
    assert not any(g.arrived - g.waiting for g in gates)  # no push was answered meanwhile
    assert (await lena.message(second.id)).state == "queued"  # nothing answered: not sent
    discarded = await lena.message(first.id)
    assert (discarded.state, discarded.state_reason) == ("failed", "discarded")

    for gate in gates:
        gate.open()

    async def second_delivered() -> bool:
        return (await lena.message(second.id)).state == "delivered"

    await wait_until(second_delivered, 60)
    assert sorted(await texts(rob, chat_id)) == ["first", "second"]  # it had left already
    discarded = await lena.message(first.id)  # its push's success changed nothing
    assert (discarded.state, discarded.state_reason) == ("failed", "discarded")
    assert [s.to_state for s in await lena.trace(first.id)] == ["queued", "failed"]
    assert (await lena.trace(first.id))[-1].evidence["push_in_flight"] is True
    steps = await lena.trace(second.id)  # "sent" only with the push's answer as evidence
    assert all("light_push" in s.evidence for s in steps if s.to_state == "sent")
    pushed = next(s for s in steps if "light_push" in s.evidence)
    assert pushed.evidence["light_push"] in light_node(lena).core.candidates
    assert not pushes_in_flight(lena)


async def test_pushes_in_flight_are_bounded_and_the_rest_go_when_they_end(
    light_net: LightNet,
) -> None:
    services = await light_net.start_services()
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    await wait_until(lambda: light_ready(lena))
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    light_node(lena).push.time_limit = AN_HOUR
    gates = [hold_pushes(s) for s in services]
    count = MAX_PUSHES_IN_FLIGHT + 2
    most = 0

    def at_the_bound() -> bool:
        nonlocal most
        most = max(most, len(pushes_in_flight(lena)))
        return most >= MAX_PUSHES_IN_FLIGHT

    with trio.fail_after(LIVENESS):
        for i in range(count):
            await lena.send_text(chat_id, f"lena {i}")
            at_the_bound()
        await wait_until(at_the_bound)
    mine = await sent(lena, chat_id)
    assert most == MAX_PUSHES_IN_FLIGHT
    assert all(m.state == "queued" for m in mine)
    waiting = [m for m in mine if m.id not in pushes_in_flight(lena)]
    assert len(waiting) == count - MAX_PUSHES_IN_FLIGHT

    for gate in gates:
        gate.open()

    async def all_delivered() -> bool:
        return all(m.state == "delivered" for m in await sent(lena, chat_id))

    await wait_until(all_delivered, 90)
    assert sorted(await texts(rob, chat_id)) == sorted(f"lena {i}" for i in range(count))
    assert most == MAX_PUSHES_IN_FLIGHT


async def test_a_message_delivered_while_its_push_waits_stays_delivered(
    light_net: LightNet,
) -> None:
    """The push goes to two nodes at once and waits for both answers: one node relays it and
    answers, the other holds it. Rob gets the message and acknowledges it meanwhile."""
    await light_net.start_services()
    lena = await light_net.start("lena", light=True)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    light = light_node(lena)
    await wait_until(lambda: light_ready(lena))
    await wait_until(lambda: len(light.push.pool.active) == 2, what="two push nodes")
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    light.push.time_limit = AN_HOUR
    slow = light_net.services[light_net.service_named(light.push.pool.active[0])]
    gate = hold_pushes(slow)

    message = await lena.send_text(chat_id, "while you wait")

    async def delivered() -> bool:
        return (await lena.message(message.id)).state == "delivered"

    with trio.fail_after(LIVENESS):
        await wait_until(delivered, what="rob's acknowledgement handled")
    assert message.id in pushes_in_flight(lena) and gate.waiting >= 1  # still unanswered

    gate.open()
    await wait_until(lambda: not pushes_in_flight(lena))
    assert (await lena.message(message.id)).state == "delivered"
    steps = await lena.trace(message.id)  # the push's answer came last: a step, no "sent"
    assert [s.to_state for s in steps] == ["queued", "delivered", "delivered"]
    assert steps[-1].evidence["after"] == "acknowledgement"
    assert steps[-1].evidence["light_push"] in light.core.candidates
    assert await texts(rob, chat_id) == ["while you wait"]
