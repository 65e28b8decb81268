"""100 relay routers in one process over a simulated network, on trio's MockClock."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import trio
from trio.testing import MockClock

from chat.waku.relay.params import GossipParams
from chat.waku.relay.sim import SimNetwork
from chat.waku.relay.verdict import ACCEPT, Reject, ValidationResult
from chat.waku.relay.wire import encode_publish_frame, message_id

TOPIC = "/waku/2/rs/42/0"


def reject_bad(topic: str, data: bytes, peer: Hashable) -> ValidationResult:
    return Reject("marked bad") if data.startswith(b"BAD") else ACCEPT


async def build(sim: SimNetwork, count: int, degree: int = 8) -> list[int]:
    now = trio.current_time()
    nodes = list(range(count))
    for node in nodes:
        sim.add_router(node, now, validator=reject_bad)
    sim.random_topology(nodes, degree, now)
    for node in nodes:
        sim.subscribe(node, TOPIC, now)
    await sim.run_for(5.0)  # a few heartbeats to build the meshes
    return nodes


async def publish_many(sim: SimNetwork, nodes: list[int], count: int) -> dict[bytes, int]:
    """Publishes `count` messages from random nodes, 50 ms apart; returns id -> publisher."""
    published: dict[bytes, int] = {}
    for i in range(count):
        origin = sim.rng.choice(nodes)
        data = b"message %d from %d" % (i, origin)
        sim.publish(origin, TOPIC, data, trio.current_time())
        published[message_id(data)] = origin
        await sim.run_for(0.05)
    return published


def delivery_ratio(sim: SimNetwork, nodes: list[int], published: dict[bytes, int]) -> float:
    expected = got = 0
    for mid, origin in published.items():
        for node in nodes:
            if node != origin:
                expected += 1
                got += mid in sim.logs[node].delivered
    return got / expected


async def test_100_routers_deliver_everything_without_loss(autojump_clock: MockClock) -> None:
    sim = SimNetwork(seed=7)
    nodes = await build(sim, 100)
    for node in nodes:
        assert len(sim.routers[node].mesh[TOPIC]) >= sim.params.d_lo
    published = await publish_many(sim, nodes, 30)
    await sim.run_for(5.0)
    assert delivery_ratio(sim, nodes, published) == 1.0
    assert all(sim.logs[n].duplicate_deliveries == 0 for n in nodes)


async def test_100_routers_deliver_99_percent_at_5_percent_loss(autojump_clock: MockClock) -> None:
    sim = SimNetwork(seed=13, loss=0.05)
    nodes = await build(sim, 100)
    published = await publish_many(sim, nodes, 30)
    await sim.run_for(5.0)
    assert delivery_ratio(sim, nodes, published) >= 0.99
    # Some of the copies lost on mesh links were recovered by IHAVE/IWANT gossip.
    assert sum(sim.routers[n].counters.received_after_iwant for n in nodes) > 0


async def test_messages_travel_by_ihave_iwant_when_there_is_no_mesh(
    autojump_clock: MockClock,
) -> None:
    # With D = 0 nobody grafts: publish floods to direct neighbours only, and every further
    # hop along the line 0-1-2-3-4 can only happen through IHAVE -> IWANT -> message.
    params = dataclasses.replace(GossipParams(), d=0, d_lo=0, d_hi=0, d_score=0, d_out=0)
    sim = SimNetwork(seed=3, params=params)
    now = trio.current_time()
    for node in range(5):
        sim.add_router(node, now)
    for node in range(4):
        sim.connect(node, node + 1, now)
    for node in range(5):
        sim.subscribe(node, TOPIC, now)
    await sim.run_for(2.0)
    assert all(not sim.routers[n].mesh[TOPIC] for n in range(5))
    data = b"gossip only"
    assert sim.publish(0, TOPIC, data, trio.current_time()) == 1
    await sim.run_for(10.0)
    mid = message_id(data)
    assert all(mid in sim.logs[n].delivered for n in range(1, 5))
    for node in (2, 3, 4):
        assert sim.routers[node].counters.received_after_iwant == 1
        assert sim.routers[node - 1].counters.iwant_served >= 1


async def test_partition_then_heal(autojump_clock: MockClock) -> None:
    sim = SimNetwork(seed=5)
    nodes = await build(sim, 40)
    left = set(nodes[:20])
    right = set(nodes[20:])
    sim.partition([left, right])
    data = b"during the partition"
    sim.publish(0, TOPIC, data, trio.current_time())
    await sim.run_for(3.0)
    mid = message_id(data)
    assert all(mid in sim.logs[n].delivered for n in left - {0})
    assert not any(mid in sim.logs[n].delivered for n in right)
    sim.heal()
    await sim.run_for(5.0)
    published = await publish_many(sim, nodes, 10)
    await sim.run_for(5.0)
    assert delivery_ratio(sim, nodes, published) == 1.0


async def test_spammer_of_invalid_messages_gets_graylisted(autojump_clock: MockClock) -> None:
    sim = SimNetwork(seed=9)
    nodes = await build(sim, 20, degree=5)
    spammer = "spammer"
    sim.add_raw_node(spammer)
    victims = nodes[:4]
    now = trio.current_time()
    for victim in victims:
        sim.connect(spammer, victim, now)
    await sim.run_for(1.0)
    for i in range(40):
        frame = encode_publish_frame(TOPIC.encode(), b"BAD spam %d" % i)
        for victim in victims:
            sim.inject(spammer, victim, frame, trio.current_time())
        await sim.run_for(0.05)
    await sim.run_for(2.0)
    for victim in victims:
        assert not sim.connected(spammer, victim)
        router = sim.routers[victim]
        assert router.counters.disconnects_requested == 1
        assert router.peer_score(spammer, trio.current_time()) < router.thresholds.graylist
    # Nothing invalid was delivered or forwarded; honest traffic still flows everywhere.
    bad_ids = {message_id(b"BAD spam %d" % i) for i in range(40)}
    assert not any(bad_ids & set(sim.logs[n].delivered) for n in nodes)
    assert sum(sim.routers[n].counters.validator_rejected for n in nodes[4:]) == 0
    published = await publish_many(sim, nodes, 5)
    await sim.run_for(3.0)
    assert delivery_ratio(sim, nodes, published) == 1.0
