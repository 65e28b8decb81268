"""Relay mounted on real nodes as `chinwag node` mounts it: forwarding, sinks, protected shards."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from multiaddr import Multiaddr

from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair
from chat.waku.relay.core import NoPeersReached
from chat.waku.relay.driver import DriverLimits
from chat.waku.relay.service import RelayService
from chat.waku.topics import RelayShard
from chat.waku.validation import RelayValidator

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
OPEN = RelayShard(42, 0).pubsub_topic
PROTECTED = RelayShard(42, 7).pubsub_topic
DEADLINE = 20


class Node3:
    def __init__(
        self,
        protected: dict[str, ShardKeyPair] | None = None,
        limits: DriverLimits | None = None,
    ) -> None:
        keys = {t: k.public_key for t, k in (protected or {}).items()}
        self.node = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(0, 7)))
        self.relay = RelayService(
            [OPEN, PROTECTED],
            validator=RelayValidator(clock=now_ns, protected=keys),
            limits=limits,
        )
        self.got: list[tuple[str, bytes]] = []
        self.arrived = trio.Event()
        self.expect = 0
        self.relay.add_sink(self._sink)

    def _sink(self, topic: str, msg: WakuMessage, data: bytes) -> None:
        self.got.append((topic, msg.payload))
        if len(self.got) >= self.expect:
            self.arrived.set()


@asynccontextmanager
async def line(*members: Node3) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for m in members:
            await m.node.mount(m.relay)
            await stack.enter_async_context(m.node.run())
        for left, right in itertools.pairwise(members):
            await right.node.host.dial(left.node.full_multiaddrs()[0])
        for i, m in enumerate(members):
            if len(members) == 1:
                break
            want = 1 if i in (0, len(members) - 1) else 2
            await m.relay.driver.wait_until(
                lambda r, want=want: (
                    len(r.mesh.get(OPEN, ())) >= want and len(r.mesh.get(PROTECTED, ())) >= want
                )
            )
        yield


def _msg(text: str) -> WakuMessage:
    return WakuMessage(text.encode(), "/chinwag/1/test/proto", timestamp=now_ns())


async def test_a_line_of_nodes_forwards_and_every_sink_sees_each_message_once() -> None:
    a, b, c = Node3(), Node3(), Node3()
    with trio.fail_after(DEADLINE):
        async with line(a, b, c):
            c.expect = 20
            for i in range(20):
                assert a.relay.publish(OPEN, _msg(f"m{i}")) >= 1
            await c.arrived.wait()
            assert [p for _, p in c.got] == [f"m{i}".encode() for i in range(20)]
            assert len(b.got) == 20  # the middle node's sinks saw them too
            assert len(a.got) == 20  # and so did the publisher's own (archive, filter)


async def test_protected_shard_needs_the_right_signature() -> None:
    owner = ShardKeyPair.generate()
    a, b, c = (Node3({PROTECTED: owner}) for _ in range(3))
    a.relay.signer.add_key(PROTECTED, owner)
    with trio.fail_after(DEADLINE):
        async with line(a, b, c):
            c.expect = 1
            a.relay.publish(PROTECTED, _msg("signed"))
            await c.arrived.wait()
            assert c.got == [(PROTECTED, b"signed")]
            # A node without the key cannot publish there: it says so before anything is sent.
            b.relay.signer.remove_key(PROTECTED)
            with pytest.raises(ValueError, match="holds no key for it"):
                b.relay.publish(PROTECTED, _msg("unsigned"))
            # Forged bytes pushed straight into the router are rejected by the next hop.
            forged = ShardKeyPair.generate().sign(PROTECTED, _msg("forged")).encode()
            before = b.relay.validator.counters()
            a.relay.driver.publish(PROTECTED, forged)
            await b.relay.driver.wait_until(lambda r: b.relay.validator.counters() != before)
            assert any(k.startswith("rejected.") for k in b.relay.validator.counters())
            assert (PROTECTED, b"forged") not in c.got


async def test_publishing_with_no_peers_is_a_typed_error() -> None:
    lonely = Node3()
    with trio.fail_after(DEADLINE):
        async with line(lonely):
            with pytest.raises(NoPeersReached):
                lonely.relay.publish(OPEN, _msg("anyone?"))


async def test_a_publish_no_send_queue_took_is_not_published_and_can_be_retried() -> None:
    a, b = Node3(limits=DriverLimits(send_queue_frames=1)), Node3()
    first, second = _msg("first"), _msg("second")
    with trio.fail_after(DEADLINE):
        async with line(a, b):
            b.expect = 2
            assert await a.relay.wait_for_room(OPEN)  # a's one-frame queue to b is empty
            # A control frame the router already had waiting takes the only slot: it is not
            # counted as reaching anyone with `first`.
            a.relay.router.subscribe(RelayShard(42, 3).pubsub_topic, trio.current_time())
            with pytest.raises(NoPeersReached):
                a.relay.publish(OPEN, first)
            assert a.got == []  # not handed to our own sinks either
            assert await a.relay.wait_for_room(OPEN)
            assert a.relay.publish(OPEN, first) == 1  # the retry is not a DuplicateMessage
            with pytest.raises(NoPeersReached):
                a.relay.publish(OPEN, second)  # the queue still holds `first`
            assert await a.relay.wait_for_room(OPEN)
            assert a.relay.publish(OPEN, second) == 1
            await b.arrived.wait()
            assert [p for _, p in b.got] == [b"first", b"second"]
            assert [p for _, p in a.got] == [b"first", b"second"]
