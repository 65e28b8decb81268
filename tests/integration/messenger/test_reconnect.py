"""The network moves under the messenger: a service node restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from harness.fast import FAST
from harness.waiting import wait_until

from chat.messenger import Messenger
from chat.waku.host import generate_node_key
from chat.waku.relay.faults import RelayFaults

Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


async def test_messages_sent_while_the_service_node_restarts_are_delivered_when_it_returns(
    net: Any, befriend: Befriend, free_port: Callable[[], int]
) -> None:
    listen, key = f"/ip4/127.0.0.1/tcp/{free_port()}", generate_node_key()
    await net.start_service(listen, key)
    alice = await net.start("alice")
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)
    await net.stop("service")

    async def offline() -> bool:
        return alice.health().status == "offline"

    await wait_until(offline)
    for i in range(5):
        await alice.send_text(chat_id, f"during the outage {i}")
    await net.start_service(listen, key)

    async def all_delivered() -> bool:
        mine = [m for m in await alice.messages(chat_id) if m.outgoing]
        return len(mine) == 5 and all(m.state == "delivered" for m in mine)

    await wait_until(all_delivered, 60)  # no manual retry: reconnecting is enough
    texts = [m.text for m in await bob.messages(chat_id) if not m.outgoing]
    assert texts == [f"during the outage {i}" for i in range(5)]

    async def back_online() -> bool:
        return alice.health().status == "online" and alice.health().last_catch_up is not None

    await wait_until(back_online, 30)


async def test_two_clients_with_no_peers_configured_find_each_other_on_the_lan_and_chat(
    net: Any, befriend: Befriend
) -> None:
    import socket as sock

    with sock.socket(sock.AF_INET, sock.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    lan = {"mdns": True, "mdns_interfaces": ("127.0.0.1",), "mdns_port": port}
    alice = await net.start("alice", **lan)  # no service node, no --peer, no fleet
    bob = await net.start("bob", **lan)
    chat_id = await befriend(alice, bob)
    await alice.send_text(chat_id, "found you on the LAN")

    async def delivered() -> bool:
        return [m.state for m in await alice.messages(chat_id)] == ["delivered"]

    await wait_until(delivered)
    assert [m.text for m in await bob.messages(chat_id)] == ["found you on the LAN"]


async def test_a_sent_message_lost_with_its_connection_goes_again_as_soon_as_peers_return(
    net: Any, befriend: Befriend, free_port: Callable[[], int]
) -> None:
    """Published into a link that lost it, then the service node went away: when relay peers
    are back the message is re-sent at once, not after its acknowledgement timeout (ten
    minutes here). Bob still has it exactly once."""
    listen, key = f"/ip4/127.0.0.1/tcp/{free_port()}", generate_node_key()
    await net.start_service(listen, key)
    link = RelayFaults(drop_rate=0.0)
    patient = replace(FAST.retry, ack_timeout=600.0, max_resend_delay=600.0)
    alice = await net.start("alice", faults=link, retry=patient)
    bob = await net.start("bob")
    chat_id = await befriend(alice, bob)

    link.drop_rate = 1.0  # every frame Alice writes is lost from now on
    message = await alice.send_text(chat_id, "lost on the way")

    async def sent() -> bool:
        return (await alice.message(message.id)).state == "sent"

    await wait_until(sent)
    await net.stop("service")
    link.drop_rate = 0.0

    async def offline() -> bool:
        return alice.health().status == "offline"

    await wait_until(offline)
    await net.start_service(listen, key)

    async def delivered() -> bool:
        return (await alice.message(message.id)).state == "delivered"

    await wait_until(delivered, 20)
    assert [m.text for m in await bob.messages(chat_id)] == ["lost on the way"]
