"""`online` promises that what we publish now reaches the network's other clients, so it
waits for a relay mesh peer on every shard, not only for a connected peer that says (by
metadata) it serves the shard. A contact request sent the moment both sides are online
arrives with its first send; a client whose only peer relays nothing stays degraded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from harness.waiting import wait_until

from chat.contacts import RequestPolicy
from chat.messenger import Messenger
from chat.waku.health import HealthSummary
from chat.waku.relay.faults import RelayFaults

NO_EARLY_RESEND = RequestPolicy(first_resend=60.0, max_resend_delay=60.0)
"""The request goes out once within the test: only its first send can bring it."""
ARRIVAL_LIMIT = 5.0
HEALTH_LIMIT = 30.0


async def _health_when(
    messenger: Messenger, condition: Callable[[HealthSummary], bool]
) -> HealthSummary:
    """The first health summary (current or future) that meets `condition`."""
    health = messenger.node.connectivity.health
    with trio.fail_after(HEALTH_LIMIT):
        async with health.subscribe() as summaries:
            async for summary in summaries:
                if condition(summary):
                    return summary
    raise AssertionError("health stopped")


def _online(summary: HealthSummary) -> bool:
    return summary.state.value == "online"


async def test_a_request_sent_as_soon_as_both_are_online_arrives_with_its_first_send(
    net: Any,
) -> None:
    await net.start_service()
    bob = await net.start("bob", requests=NO_EARLY_RESEND)
    alice = await net.start("alice", requests=NO_EARLY_RESEND)
    for messenger in (bob, alice):
        summary = await _health_when(messenger, _online)
        assert all(peers > 0 for _, peers in summary.mesh_per_shard), summary
    await alice.add_contact(bob.identity().contact_link, "hi, it's Alice")
    alice_key = alice.identity().chat_key

    async def bob_has_request() -> bool:
        return any(c.chat_key == alice_key for c in await bob.contacts())

    await wait_until(bob_has_request, ARRIVAL_LIMIT)
    (sent,) = await alice.contacts()
    assert sent.sends == 1


async def test_a_client_whose_only_peer_relays_nothing_is_degraded_not_online(net: Any) -> None:
    # The service node serves store and says (metadata) it is on our shards, but every relay
    # frame it writes is lost: it never tells us it subscribed, so no mesh can form.
    await net.start_service(faults=RelayFaults(drop_rate=1.0))
    bob = await net.start("bob")

    summary = await _health_when(bob, lambda s: not s.catch_up_pending)
    assert all(peers > 0 for _, peers in summary.peers_per_shard), summary
    assert all(peers == 0 for _, peers in summary.mesh_per_shard), summary
    assert summary.state.value == "degraded"
    assert bob.health().status == "degraded"
