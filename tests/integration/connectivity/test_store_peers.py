"""The peer manager learns from identify which connected peers serve store, ranks them, and
fails over when the messenger reports failures."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from pathlib import Path

import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.waku.node import Node, NodeConfig
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import PeerPolicy, Service
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions

DEADLINE = 20
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


async def test_store_peers_come_from_identify_and_fail_over(tmp_path: Path) -> None:
    stores = [
        ServiceNode(
            ServiceNodeConfig(
                node=NodeConfig(listen_addrs=[LOOPBACK], shards=(0,)),
                store=StoreOptions(archive_path=tmp_path / f"archive{i}.sqlite"),
            )
        )
        for i in range(2)
    ]
    relay_only = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(0,)))
    client = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(0,)))
    policy = PeerPolicy(service_targets={Service.STORE: 2})
    peers = PeerManagerService((0,), metadata=client.metadata, policy=policy, rng=random.Random(3))
    await client.mount(peers)
    with trio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            for store in stores:
                await stack.enter_async_context(store.run())
            await stack.enter_async_context(relay_only.run())
            await stack.enter_async_context(client.run())
            for other in [s.node for s in stores] + [relay_only]:
                peers.add_address(other.full_multiaddrs()[0])  # as plain relay peers
            store_ids = {s.node.host.peer_id for s in stores}
            await wait_until(lambda: set(peers.store_peers()) == store_ids)
            assert relay_only.host.peer_id not in peers.store_peers()
            assert peers.services_reachable()[Service.STORE]

            first, second = peers.store_peers()
            peers.record(second, Service.STORE, True)  # it answered a query
            assert peers.store_peers() == [second, first]
            peers.record(second, Service.STORE, False)
            peers.record(second, Service.STORE, False)  # twice in a row: set aside
            assert peers.store_peers() == [first]
            peers.record(first, Service.STORE, False)
            peers.record(first, Service.STORE, False)
            assert peers.store_peers() == []
            assert not peers.services_reachable()[Service.STORE]
