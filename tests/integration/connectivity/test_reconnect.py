"""A service node dies and comes back on the same address: clients driven by the peer manager
reconnect by themselves, and relay works again; health follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from harness.waiting import wait_until

from chat.waku.health import HealthState
from chat.waku.relay.core import NoPeersReached

DEADLINE = 30
TOPIC = "/waku/2/rs/42/0"


async def test_clients_reconnect_after_a_service_node_restarts(
    service_node: Any,
    client_class: Any,
    make_message: Callable[[str], Any],
) -> None:
    with trio.fail_after(DEADLINE):
        await service_node.start()
        address = service_node.address
        server_id = address.rsplit("/", 1)[1]
        alice, bob = client_class(), client_class()
        async with alice.running(), bob.running():
            for client in (alice, bob):
                client.peers.add_address(address)
            await wait_until(lambda: alice.meshed_with(server_id) and bob.meshed_with(server_id))
            await wait_until(lambda: alice.health.summary().state is HealthState.ONLINE)
            alice.relay.publish(TOPIC, make_message("before"))
            await wait_until(lambda: b"before" in bob.received)

            service_node.stop()
            await wait_until(lambda: not alice.peers.connected_peers())
            await wait_until(lambda: alice.health.summary().state is HealthState.OFFLINE)
            try:
                alice.relay.publish(TOPIC, make_message("nobody hears this"))
            except NoPeersReached:
                pass

            await service_node.start()
            assert service_node.address == address
            await wait_until(lambda: alice.meshed_with(server_id) and bob.meshed_with(server_id))
            alice.relay.publish(TOPIC, make_message("after"))
            await wait_until(lambda: b"after" in bob.received)
            assert alice.health.summary().state is HealthState.ONLINE
            stats = alice.peers.stats()
            assert stats.connected == 1 and stats.dials_in_flight == 0


class JumpingClock:
    """trio's clock plus an offset a test adds to, as a suspended machine sees time jump."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return trio.current_time() + self.offset


async def test_a_sleep_resets_connections_and_health_goes_through_sleeping_to_online(
    service_node: Any, client_class: Any
) -> None:
    clock = JumpingClock()
    with trio.fail_after(DEADLINE):
        await service_node.start()
        server_id = service_node.address.rsplit("/", 1)[1]
        alice = client_class(clock=clock)
        caught_up: list[float | None] = []
        resets: list[str] = []

        async def catch_up(since: float | None) -> bool:
            caught_up.append(since)
            return True

        async def on_reset(reason: str) -> None:
            resets.append(reason)

        alice.health.set_catch_up(catch_up)
        alice.health.on_reset(on_reset)
        states = alice.health.subscribe()
        async with alice.running():
            alice.peers.add_address(service_node.address)
            await wait_until(lambda: alice.meshed_with(server_id))
            await wait_until(lambda: alice.health.summary().state is HealthState.ONLINE)
            first_catch_up = alice.health.summary().last_catch_up
            assert first_catch_up is not None and caught_up == [None]
            dials_before = alice.peers.stats().dials_started

            clock.offset += 60.0  # the lid closes for a minute
            seen: list[HealthState] = []
            while not (seen and seen[-1] is HealthState.ONLINE and HealthState.SLEEPING in seen):
                summary = await states.receive()
                seen.append(summary.state)
            after_sleep = seen[seen.index(HealthState.SLEEPING) :]
            assert after_sleep[0] is HealthState.SLEEPING and after_sleep[-1] is HealthState.ONLINE
            assert HealthState.OFFLINE in after_sleep  # every connection was dropped
            assert resets == ["woke from sleep"] and alice.health.sleeps_detected == 1
            assert caught_up == [None, first_catch_up]  # catch up from the last good one
            assert alice.peers.stats().dials_started > dials_before
            await wait_until(lambda: alice.meshed_with(server_id))
