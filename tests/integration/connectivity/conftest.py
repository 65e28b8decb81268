"""Nodes for connectivity tests: a relay service node that can die and come back on the same
address with the same identity, and relay clients driven by the peer manager and health."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.crypto.keys import KeyPair
from multiaddr import Multiaddr

from chat.waku.health import HealthPolicy
from chat.waku.health_monitor import HealthService
from chat.waku.host import generate_node_key
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import PeerPolicy
from chat.waku.relay.service import RelayService
from chat.waku.topics import RelayShard
from chat.waku.validation import RelayValidator

CLUSTER = 42
SHARDS = (0,)
TOPIC = RelayShard(CLUSTER, 0).pubsub_topic
FAST_POLICY = PeerPolicy(relay_peers_per_shard=2, service_targets={}, reconnect_delay=0.2)
HEALTH_POLICY = HealthPolicy(tick_interval=0.5, sleep_after_ticks=4, keepalive_interval=5.0)


def relay_for(node: Node) -> RelayService:
    topics = [RelayShard(node.config.cluster_id, s).pubsub_topic for s in node.config.shards]
    return RelayService(topics, validator=RelayValidator(clock=now_ns))


def message(text: str) -> WakuMessage:
    return WakuMessage(text.encode(), "/chinwag/1/conn-test/proto", timestamp=now_ns())


class ServiceNode:
    """A relay node that can be stopped and started again on the same port and key."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.key: KeyPair = generate_node_key()
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self.node: Node | None = None
        self.relay: RelayService | None = None

    @property
    def address(self) -> str:
        assert self.node is not None
        return str(self.node.full_multiaddrs()[0])

    async def start(self) -> None:
        self._scope = await self._nursery.start(self._run)

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()
        self._scope = None

    async def _run(self, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        listen = Multiaddr(f"/ip4/127.0.0.1/tcp/{self.port}")
        node = Node(NodeConfig(listen_addrs=[listen], shards=SHARDS, key_pair=self.key))
        relay = relay_for(node)
        await node.mount(relay)
        with trio.CancelScope() as scope:
            async with node.run():
                self.node, self.relay = node, relay
                self.port = int(node.host.listen_multiaddrs()[0].value_for_protocol("tcp"))
                task_status.started(scope)
                await trio.sleep_forever()


class Client:
    """A relay node whose connections are kept by the peer manager, watched by health."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.node = Node(
            NodeConfig(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")], shards=SHARDS)
        )
        self.relay = relay_for(self.node)
        self.peers = PeerManagerService(
            SHARDS, metadata=self.node.metadata, policy=FAST_POLICY, rng=random.Random(7)
        )
        self.health = HealthService(
            self.peers,
            SHARDS,
            required_services=(),
            policy=HEALTH_POLICY,
            clock=clock or trio.current_time,
            ping_timeout=1.0,
        )
        self.received: list[bytes] = []
        self.relay.add_sink(lambda topic, msg, data: self.received.append(msg.payload))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Client]:
        for service in (self.relay, self.peers, self.health):
            await self.node.mount(service)
        async with self.node.run():
            yield self

    def meshed_with(self, peer: str) -> bool:
        return any(str(p) == peer for p in self.relay.router.mesh.get(TOPIC, ()))


@pytest.fixture
async def service_node() -> AsyncIterator[ServiceNode]:
    async with trio.open_nursery() as nursery:
        yield ServiceNode(nursery)
        nursery.cancel_scope.cancel()


@pytest.fixture
def client_class() -> type[Client]:
    """The client class (a fixture: importlib mode lets tests take helpers only this way)."""
    return Client


@pytest.fixture
def make_message() -> Callable[[str], WakuMessage]:
    return message
