"""Rendezvous on loopback: two nodes register under a shard's namespace at a point and find
each other there; a node on another shard is not reported."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.waku.discovery.rendezvous import (
    RendezvousPoint,
    ShardPeer,
    ShardRendezvous,
    shard_namespace,
)
from chat.waku.node import Node, NodeConfig

DEADLINE = 20
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


def node(shards: tuple[int, ...]) -> Node:
    return Node(NodeConfig(listen_addrs=[LOOPBACK], shards=shards))


async def test_peers_of_a_shard_find_each_other_at_a_rendezvous_point() -> None:
    point_node, alice, bob, carol = node((0,)), node((0, 5)), node((5,)), node((6,))
    point = RendezvousPoint()
    await point_node.mount(point)
    found: dict[str, list[ShardPeer]] = {"alice": [], "bob": [], "carol": []}
    clients = {
        name: ShardRendezvous(42, n.config.shards, found[name].append, discover_interval=0.5)
        for name, n in (("alice", alice), ("bob", bob), ("carol", carol))
    }
    with trio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(point_node.run())
            for name, n in (("alice", alice), ("bob", bob), ("carol", carol)):
                await n.mount(clients[name])
                await stack.enter_async_context(n.run())
                await n.host.dial(point_node.full_multiaddrs()[0])
            alice_id, bob_id = alice.host.peer_id, bob.host.peer_id
            await wait_until(lambda: any(p.peer_id == alice_id for p in found["bob"]))
            await wait_until(lambda: any(p.peer_id == bob_id for p in found["alice"]))
            on_five = [p for p in found["bob"] if p.peer_id == alice_id]
            assert {p.shard for p in on_five} == {5}
            assert on_five[0].addrs == tuple(alice.host.listen_multiaddrs())
            assert all(p.peer_id not in (alice_id, bob_id) for p in found["carol"])
            assert point.service is not None
            stats = point.service.get_namespace_stats()
            assert stats[shard_namespace(42, 5)] == 2 and stats[shard_namespace(42, 6)] == 1
            assert all(c.failures == 0 for c in clients.values())


async def test_the_shard_set_follows_shards_joined_and_left() -> None:
    """A node that starts relaying a new shard (a community's) registers and discovers
    under it at once, not at the next interval; a shard it left is no longer asked about."""
    point_node, alice, bob = node((0,)), node((0,)), node((0,))
    await point_node.mount(RendezvousPoint())
    found: dict[str, list[ShardPeer]] = {"alice": [], "bob": []}
    clients = {
        name: ShardRendezvous(42, (0,), found[name].append, discover_interval=DEADLINE * 2)
        for name in ("alice", "bob")
    }
    with trio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(point_node.run())
            for name, n in (("alice", alice), ("bob", bob)):
                await n.mount(clients[name])
                await stack.enter_async_context(n.run())
                await n.host.dial(point_node.full_multiaddrs()[0])
            point_id = point_node.host.peer_id
            await wait_until(lambda: point_id in clients["alice"].points(alice.host))
            await wait_until(lambda: point_id in clients["bob"].points(bob.host))
            registered = clients["alice"].registrations
            clients["alice"].set_shards((0, 7))
            await wait_until(lambda: clients["alice"].registrations > registered)
            clients["bob"].set_shards((7, 0))
            alice_id = alice.host.peer_id
            await wait_until(
                lambda: any(p.peer_id == alice_id and p.shard == 7 for p in found["bob"])
            )
            clients["bob"].set_shards((0,))
            assert clients["bob"].shards == (0,)
            again = await clients["bob"].round(bob.host, point_id)
            assert again and {p.shard for p in again} == {0}


async def test_a_point_connected_after_start_is_used_within_seconds_not_at_the_next_round() -> None:
    point_node, alice = node((0,)), node((0, 5))
    await point_node.mount(RendezvousPoint())
    client = ShardRendezvous(42, (0, 5), lambda _peer: None, discover_interval=DEADLINE * 10)
    with trio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(point_node.run())
            await alice.mount(client)
            await stack.enter_async_context(alice.run())
            # The first round ran as the node started, with no point to ask.
            await alice.host.dial(point_node.full_multiaddrs()[0])
            await wait_until(lambda: client.registrations == 2)
