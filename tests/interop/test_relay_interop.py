"""Our relay (RelayService on our Node, as `chinwag node` mounts it) against real js-waku
(@waku/sdk 0.0.27 createRelayNode) and js-libp2p 2.x gossipsub 14 peers: messages both ways
with both muxers and both dial directions, 1000 messages each way, deliveries that can only
travel by IHAVE/IWANT gossip in a mixed five-node topology, a protected shard, and the
metadata cluster rule with relay mounted. See docs/relay.md, "Interop"."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from harness.protected_shard import (
    MINUTE_NS,
    Member,
    network,
    protected_relay,
    rejections,
)
from harness.protected_shard import PROTECTED as SHARD7
from harness.protected_shard import SHARD as SHARD7_INDEX
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.message import WakuMessage, now_ns
from chat.waku.metadata.core import MetadataOutcome, Verdict
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair, ShardPublicKey
from chat.waku.relay.core import Router
from chat.waku.relay.params import GossipParams
from chat.waku.relay.service import RelayService, router_validator
from chat.waku.topics import RelayShard
from chat.waku.validation import RelayValidator

pytestmark = pytest.mark.interop

CLUSTER = 42
SHARD = 0
TOPIC = RelayShard(CLUSTER, SHARD).pubsub_topic
PROTECTED_SHARD = 1
PROTECTED = RelayShard(CLUSTER, PROTECTED_SHARD).pubsub_topic
PY_CONTENT = "/chinwag/1/py-to-js/proto"
JS_CONTENT = "/chinwag/1/js-to-py/proto"
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
DEADLINE = 60

STACKS = ("sdk027", "gossipsub14")
MUXERS = ("mplex", "yamux")
DIRECTIONS = ("js-dials-us", "we-dial-js")
FEW = 25
MANY = 1000
SEND_WINDOW = 200
"""Messages we let be in flight to js before waiting for it to report deliveries."""


class PyRelay:
    """Our node with relay mounted on shards 0 and 1 of cluster 42, recording what its sinks
    see (its own publications included, as the service hands those to sinks too)."""

    def __init__(
        self,
        *,
        protected: Mapping[str, ShardPublicKey] | None = None,
        params: GossipParams | None = None,
    ) -> None:
        self.node = Node(
            NodeConfig(listen_addrs=[LOOPBACK], cluster_id=CLUSTER, shards=(SHARD, PROTECTED_SHARD))
        )
        validator = RelayValidator(clock=now_ns, protected=protected)
        self.relay = RelayService([TOPIC, PROTECTED], validator=validator)
        if params is not None:
            # Non-default gossip parameters: the service builds its driver around
            # `relay.router` when it starts, so swapping the router before that is enough.
            self.relay.router = Router(params=params, validator=router_validator(validator))
        self.got: list[tuple[str, WakuMessage, bytes]] = []
        self.by_content: Counter[str] = Counter()
        self._changed = trio.Event()
        self.relay.add_sink(self._sink)

    def _sink(self, topic: str, msg: WakuMessage, data: bytes) -> None:
        self.got.append((topic, msg, data))
        self.by_content[msg.content_topic] += 1
        self._changed.set()
        self._changed = trio.Event()

    @property
    def peer_id(self) -> str:
        return self.node.host.peer_id.to_base58()

    @property
    def addr(self) -> str:
        return str(self.node.full_multiaddrs()[0])

    @property
    def router(self) -> Router:
        return self.relay.driver.router

    async def wait_content(self, content_topic: str, count: int) -> None:
        while self.by_content[content_topic] < count:
            await self._changed.wait()

    async def wait_in_mesh(self, topic: str, peer: str, present: bool = True) -> None:
        pid = ID.from_base58(peer)
        await self.relay.driver.wait_until(lambda r: (pid in r.mesh.get(topic, ())) is present)


@asynccontextmanager
async def running(*relays: PyRelay) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for r in relays:
            await r.node.mount(r.relay)
            await stack.enter_async_context(r.node.run())
        yield


async def meshed(ours: PyRelay, js: Any, topic: str = TOPIC) -> None:
    """Both sides have grafted each other on `topic`."""
    await ours.wait_in_mesh(topic, js.peer_id)
    await js.call("waitMesh", pubsubTopic=topic, peer=ours.peer_id)


async def connect(ours: PyRelay, js: Any, direction: str) -> None:
    if direction == "js-dials-us":
        await js.call("dial", addr=ours.addr)
    else:
        await ours.node.host.dial(js.addrs[0])


def message(payload: str, content_topic: str = PY_CONTENT) -> WakuMessage:
    return WakuMessage(payload.encode(), content_topic, timestamp=now_ns())


async def send_to_js(ours: PyRelay, js: Any, count: int, prefix: str = "py") -> None:
    """Publish `count` messages, at most SEND_WINDOW ahead of what js reports delivered."""
    base = len(js.messages)
    for i in range(count):
        if i >= SEND_WINDOW:
            await js.wait_messages(base + i - SEND_WINDOW + 1)
        assert ours.relay.publish(TOPIC, message(f"{prefix}-{i}")) >= 1


def js_payloads(js: Any) -> Counter[tuple[str, str, str]]:
    return Counter((m["pubsubTopic"], m["contentTopic"], m["payload"]) for m in js.messages)


def py_payloads(ours: PyRelay, content_topic: str) -> Counter[tuple[str, str, str]]:
    return Counter(
        (topic, msg.content_topic, msg.payload.decode())
        for topic, msg, _ in ours.got
        if msg.content_topic == content_topic
    )


async def exchange(ours: PyRelay, js: Any, count: int) -> tuple[float, float]:
    """`count` messages each way on TOPIC; every one arrives once, decoded intact. Returns
    the seconds each direction took."""
    started = trio.current_time()
    await send_to_js(ours, js, count)
    await js.wait_messages(count)
    py_to_js = trio.current_time() - started
    assert js_payloads(js) == Counter((TOPIC, PY_CONTENT, f"py-{i}") for i in range(count))

    started = trio.current_time()
    reply = await js.call("publish", contentTopic=JS_CONTENT, shard=SHARD, count=count)
    assert reply["sent"] == count, reply["failures"]
    await ours.wait_content(JS_CONTENT, count)
    js_to_py = trio.current_time() - started
    assert py_payloads(ours, JS_CONTENT) == Counter(
        (TOPIC, JS_CONTENT, f"js-{i}") for i in range(count)
    )
    for _, msg, _ in ours.got:
        assert msg.timestamp > 0  # js set it, and our validator would have dropped 0
    return py_to_js, js_to_py


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("muxer", MUXERS)
@pytest.mark.parametrize("stack", STACKS)
async def test_messages_flow_both_ways(
    start_js: Any, stack: str, muxer: str, direction: str
) -> None:
    ours = PyRelay()
    with trio.fail_after(DEADLINE):
        async with running(ours), start_js(stack, muxer=muxer, clusterId=CLUSTER) as js:
            await js.call("subscribe", contentTopic=PY_CONTENT, shard=SHARD)
            await connect(ours, js, direction)
            await meshed(ours, js)
            await exchange(ours, js, FEW)
            assert ours.router.counters.validator_rejected == 0


@pytest.mark.parametrize(
    ("stack", "muxer", "direction"),
    [("sdk027", "yamux", "js-dials-us"), ("gossipsub14", "mplex", "we-dial-js")],
)
async def test_a_thousand_messages_each_way_arrive_complete(
    start_js: Any, stack: str, muxer: str, direction: str
) -> None:
    ours = PyRelay()
    with trio.fail_after(DEADLINE):
        async with running(ours), start_js(stack, muxer=muxer, clusterId=CLUSTER) as js:
            await js.call("subscribe", contentTopic=PY_CONTENT, shard=SHARD)
            await connect(ours, js, direction)
            await meshed(ours, js)
            py_to_js, js_to_py = await exchange(ours, js, MANY)
            counters = ours.router.counters
            assert counters.send_queue_drops == 0 and counters.delivery_drops == 0
            print(f"{stack}/{muxer}: {MANY} py->js in {py_to_js:.2f} s, js->py in {js_to_py:.2f} s")


GOSSIP_ONLY = GossipParams(d=0, d_lo=0, d_hi=0, d_score=0, d_out=0)
"""A router that never grafts and, on inbound connections, refuses every GRAFT: its mesh stays
empty, so it neither receives nor forwards by mesh; messages reach and leave it by gossip."""
GOSSIP_CONTENT = "/chinwag/1/gossip/proto"
GOSSIPED = 20


async def test_deliveries_by_ihave_iwant_gossip_in_a_mixed_topology(start_js: Any) -> None:
    """J1(gossipsub14) - P1(py) - J2(sdk027) - G(py, gossip only) - J3(gossipsub14), no other
    links. G's mesh is empty (checked), so:

    - "down" messages published by J1 cross J1-P1-J2 by flood publish and mesh, then J2 -> G
      only by J2's IHAVE and G's IWANT (G counts each first copy that answered its IWANT),
      and G -> J3 only by G's IHAVE and J3's IWANT (G counts IWANT answers; J3 has no other
      link, and G forwards nothing by mesh: `forwarded` stays 0);
    - "up" messages published by J3 reach G by flood publish, then G -> J2 only by gossip
      again, then J2-P1-J1 by mesh.
    """
    p1, g = PyRelay(), PyRelay(params=GOSSIP_ONLY)
    with trio.fail_after(DEADLINE):
        async with (
            running(p1, g),
            start_js("gossipsub14", muxer="yamux", clusterId=CLUSTER) as j1,
            start_js("sdk027", muxer="mplex", clusterId=CLUSTER) as j2,
            start_js("gossipsub14", muxer="mplex", clusterId=CLUSTER) as j3,
        ):
            for js in (j1, j2, j3):
                await js.call("subscribe", contentTopic=GOSSIP_CONTENT, shard=SHARD)
            await j1.call("dial", addr=p1.addr)
            await p1.node.host.dial(j2.addrs[0])
            # js dials G: G sees inbound peers only, whose GRAFTs a D_hi of 0 refuses.
            await j2.call("dial", addr=g.addr)
            await j3.call("dial", addr=g.addr)
            await meshed(p1, j1)
            await meshed(p1, j2)
            # Both js nodes grafted G and were refused (G holds a backoff for each), and both
            # have processed G's PRUNE (G left the mesh they had put it in when grafting).
            j2_id, j3_id = ID.from_base58(j2.peer_id), ID.from_base58(j3.peer_id)
            await g.relay.driver.wait_until(
                lambda r: {j2_id, j3_id} <= set(r.backoff.get(TOPIC, {}))
            )
            for js in (j2, j3):
                await js.call("waitMesh", pubsubTopic=TOPIC, peer=g.peer_id, present=False)

            down = await j1.call(
                "publish", contentTopic=GOSSIP_CONTENT, shard=SHARD, count=GOSSIPED, prefix="down"
            )
            assert down["sent"] == GOSSIPED, down["failures"]
            await j3.wait_messages(GOSSIPED)
            up = await j3.call(
                "publish", contentTopic=GOSSIP_CONTENT, shard=SHARD, count=GOSSIPED, prefix="up"
            )
            assert up["sent"] == GOSSIPED, up["failures"]
            await j1.wait_messages(GOSSIPED)
            await j2.wait_messages(2 * GOSSIPED)

            def sent(prefix: str) -> Counter[tuple[str, str, str]]:
                return Counter((TOPIC, GOSSIP_CONTENT, f"{prefix}-{i}") for i in range(GOSSIPED))

            assert js_payloads(j3) == sent("down")
            assert js_payloads(j1) == sent("up")
            assert js_payloads(j2) == sent("down") + sent("up")
            assert py_payloads(p1, GOSSIP_CONTENT) == sent("down") + sent("up")
            assert py_payloads(g, GOSSIP_CONTENT) == sent("down") + sent("up")
            # The proof that gossip carried them.
            counters = g.router.counters
            assert g.router.mesh[TOPIC] == set()
            assert counters.grafts_sent == 0 and counters.forwarded == 0
            assert counters.received_after_iwant == GOSSIPED  # every "down" one, J2 -> G
            assert counters.iwant_served >= 2 * GOSSIPED  # "down" to J3, "up" to J2


async def test_protected_shard_passes_signed_and_stops_unsigned_or_forged(start_js: Any) -> None:
    """js -> guard (ours, shard 1 protected) -> downstream (ours, shard 1 NOT protected, so it
    would take anything it is given); no js-downstream link."""
    owner, impostor = ShardKeyPair.generate(), ShardKeyPair.generate()
    guard = PyRelay(protected={PROTECTED: owner.public_key})
    downstream = PyRelay()
    signed = owner.sign(PROTECTED, message("signed", JS_CONTENT)).encode()
    forged = impostor.sign(PROTECTED, message("forged", JS_CONTENT)).encode()
    with trio.fail_after(DEADLINE):
        async with (
            running(guard, downstream),
            start_js("sdk027", muxer="yamux", clusterId=CLUSTER) as js,
        ):
            await js.call("dial", addr=guard.addr)
            await downstream.node.host.dial(guard.addr)
            await meshed(guard, js, PROTECTED)
            await guard.wait_in_mesh(PROTECTED, downstream.peer_id)
            await downstream.wait_in_mesh(PROTECTED, guard.peer_id)

            # In this order on js's one stream to the guard, which forwards in order on its
            # one stream downstream: once the signed message is downstream, a forwarded
            # unsigned or forged one would have arrived before it.
            unsigned = await js.call(
                "publish", contentTopic=JS_CONTENT, shard=PROTECTED_SHARD, prefix="unsigned"
            )
            assert unsigned["sent"] == 1, unsigned["failures"]
            for data in (forged, signed):
                reply = await js.call("publishRaw", shard=PROTECTED_SHARD, hex=data.hex())
                assert reply["recipients"] == 1
            await downstream.wait_content(JS_CONTENT, 1)

            assert [(t, d) for t, _, d in downstream.got] == [(PROTECTED, signed)]
            assert [(t, d) for t, _, d in guard.got] == [(PROTECTED, signed)]
            rejected = guard.relay.validator.counters()
            assert rejected.get("rejected.signature_length") == 1  # js-waku's unsigned one
            assert rejected.get("rejected.signature_mismatch") == 1  # the impostor's
            assert guard.router.counters.validator_rejected == 2
            assert downstream.router.counters.validator_rejected == 0


async def test_relay_keeps_the_cluster_rule(start_js: Any) -> None:
    """With relay mounted, a js-waku node of cluster 99 is still disconnected (and never
    joins our relay), while one of cluster 42 meshes and gets our messages."""
    ours = PyRelay()
    outcomes = ours.node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with (
            running(ours),
            start_js("sdk027", muxer="mplex", clusterId=99, shards=[SHARD]) as stranger,
            start_js("sdk027", muxer="mplex", clusterId=CLUSTER) as member,
        ):
            await stranger.call("dial", addr=ours.addr)
            outcome = await _outcome_for(outcomes, stranger.peer_id)
            assert outcome.verdict is Verdict.WRONG_CLUSTER
            await stranger.wait_for(
                lambda e: e.get("event") == "connection:close" and e["peer"] == ours.peer_id
            )
            stranger_id = ID.from_base58(stranger.peer_id)
            await ours.relay.driver.wait_until(lambda r: stranger_id not in r.peers)
            assert not ours.node.host.is_connected(stranger_id)

            await member.call("subscribe", contentTopic=PY_CONTENT, shard=SHARD)
            await member.call("dial", addr=ours.addr)
            await meshed(ours, member)
            assert ours.relay.publish(TOPIC, message("members only")) == 1
            await member.wait_messages(1)
            assert js_payloads(member) == Counter([(TOPIC, PY_CONTENT, "members only")])
            assert stranger.messages == []
            assert all(stranger_id not in mesh for mesh in ours.router.mesh.values())


async def _outcome_for(
    channel: trio.MemoryReceiveChannel[MetadataOutcome], peer: str
) -> MetadataOutcome:
    async for outcome in channel:
        if outcome.peer_id.to_base58() == peer:
            return outcome
    raise AssertionError("the metadata service stopped before judging the peer")


async def test_a_js_waku_outsider_is_rejected_by_every_protected_relay(start_js: Any) -> None:
    """Three of our relays as `chinwag node --protected-shard` builds them, a real js-waku
    relay node meshed with each (it does not check signatures, so it is the outsider), a
    member holding the key, and a subscriber of ours that checks nothing (it would deliver
    whatever a relay forwarded). js-waku's unsigned messages, and the forged and replayed
    ones it publishes verbatim, are all rejected by every relay; the subscriber gets only the
    member's signed messages."""
    owner, impostor = ShardKeyPair.generate(), ShardKeyPair.generate()
    relays = [protected_relay(f"R{i}", owner) for i in (1, 2, 3)]
    member, subscriber = Member("member"), Member("subscriber")
    member.relay.sign_with(SHARD7, owner)
    links = [
        *itertools.combinations(relays, 2),
        *((subscriber, relay) for relay in relays),
        (member, relays[0]),
    ]
    forged = impostor.sign(SHARD7, message("forged", JS_CONTENT)).encode()
    replayed = owner.sign(
        SHARD7, WakuMessage(b"replayed", JS_CONTENT, timestamp=now_ns() - 10 * MINUTE_NS)
    ).encode()
    unsigned = 4
    expected = Counter(
        signature_length=unsigned, signature_mismatch=1, signed_timestamp_out_of_window=1
    )
    with trio.fail_after(DEADLINE):
        async with (
            network([*relays, member, subscriber], links),
            start_js("sdk027", muxer="yamux", clusterId=CLUSTER, shards=[SHARD7_INDEX]) as js,
        ):
            for relay in relays:
                await js.call("dial", addr=str(relay.node.full_multiaddrs()[0]))
            for relay in relays:
                js_id = ID.from_base58(js.peer_id)
                await relay.relay.driver.wait_until(lambda r, js_id=js_id: js_id in r.mesh[SHARD7])
                await js.call("waitMesh", pubsubTopic=SHARD7, peer=relay.peer_id.to_base58())

            reply = await js.call(
                "publish", contentTopic=JS_CONTENT, shard=SHARD7_INDEX, count=unsigned
            )
            assert reply["sent"] == unsigned, reply["failures"]
            for data in (forged, replayed):
                reply = await js.call("publishRaw", shard=SHARD7_INDEX, hex=data.hex())
                assert reply["recipients"] == 3
            for relay in relays:
                await relay.relay.driver.wait_until(
                    lambda router, relay=relay: rejections(relay) == expected
                )
            signed = [b"signed 0", b"signed 1"]
            for payload in signed:
                member.relay.publish(SHARD7, message(payload.decode(), "/chinwag/1/member/proto"))
            await subscriber.heard(len(signed))
            for relay in relays:
                await relay.heard(len(signed))

    assert subscriber.payloads == signed
    for relay in relays:
        assert relay.payloads == signed, relay.name
        assert relay.relay.validator.accepted == len(signed), relay.name
        assert rejections(relay) == expected, relay.name
