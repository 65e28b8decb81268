"""Nodes on one protected shard for protected-shard tests: relays built as `chinwag node
--protected-shard` builds them (ServiceNode) and bare relays (a member, an outsider, a
subscriber) that record what their sinks hear."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair
from chat.waku.relay.service import RelayService
from chat.waku.service_node import ServiceNode, ServiceNodeConfig
from chat.waku.topics import RelayShard
from chat.waku.validation import RelayValidator

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
SHARD = 7
PROTECTED = RelayShard(42, SHARD).pubsub_topic
CONTENT = "/chinwag/1/community-test/proto"
MINUTE_NS = 60 * 1_000_000_000


class Member:
    """A node on the protected shard with its own relay, recording what its sinks hear.
    `service` set: built as `chinwag node` builds it (ServiceNode), else a bare relay whose
    validator checks no signatures."""

    def __init__(self, name: str, service: ServiceNode | None = None) -> None:
        self.name = name
        self.service = service
        if service is not None:
            self.node, self.relay = service.node, service.relay
        else:
            self.node = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(SHARD,)))
            self.relay = RelayService([PROTECTED], validator=RelayValidator(clock=now_ns))
        self.payloads: list[bytes] = []
        self._heard = trio.Event()
        self.relay.add_sink(self._sink)

    def _sink(self, topic: str, message: WakuMessage, data: bytes) -> None:
        assert topic == PROTECTED
        self.payloads.append(message.payload)
        self._heard.set()
        self._heard = trio.Event()

    @property
    def peer_id(self) -> ID:
        return self.node.host.peer_id

    async def heard(self, count: int) -> None:
        """Until the sinks heard at least `count` messages."""
        while len(self.payloads) < count:
            await self._heard.wait()

    def mesh(self) -> set[Hashable]:
        return set(self.relay.router.mesh.get(PROTECTED, ()))


def protected_relay(name: str, owner: ShardKeyPair, *, lightpush: bool = False) -> Member:
    """A ServiceNode serving shard 0 and, protected by `owner`'s key, shard 7."""
    config = ServiceNodeConfig(
        node=NodeConfig(listen_addrs=[LOOPBACK], shards=(0,)),
        protected={PROTECTED: owner.public_key},
        lightpush=lightpush,
    )
    return Member(name, ServiceNode(config))


@asynccontextmanager
async def network(
    members: Iterable[Member], links: Iterable[tuple[Member, Member]]
) -> AsyncIterator[None]:
    """Start every member, dial each link, and wait until each link is a mesh link both ways."""
    links = list(links)
    async with AsyncExitStack() as stack:
        for member in members:
            if member.service is not None:
                await stack.enter_async_context(member.service.run())
            else:
                await member.node.mount(member.relay)
                await stack.enter_async_context(member.node.run())
        for dialer, listener in links:
            await dialer.node.host.dial(listener.node.full_multiaddrs()[0])
        for left, right in links:
            for one, other in ((left, right), (right, left)):
                await one.relay.driver.wait_until(
                    lambda router, one=one, other=other: other.peer_id in one.mesh()
                )
        yield


def message(text: str, timestamp: int | None = None) -> WakuMessage:
    return WakuMessage(text.encode(), CONTENT, timestamp=timestamp or now_ns())


def rejections(relay: Member) -> Counter[str]:
    return Counter(
        {
            reason: count
            for (topic, reason), count in relay.relay.validator.protected_rejected.items()
            if topic == PROTECTED
        }
    )
