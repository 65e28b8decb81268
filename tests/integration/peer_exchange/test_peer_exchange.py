"""Peer exchange between real py-libp2p nodes on loopback: a service node learns the records of
the nodes it is connected to and hands them out; a client checks them and dials one; bad and
oversized answers are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from harness.waiting import wait_until
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from multiaddr import Multiaddr

from chat.waku.enr.waku_fields import Capability, RelayShards, WakuPeer, node_enr
from chat.waku.framing import encode_uvarint, read_frame, write_frame
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_exchange.client import ask_pool, request_peers
from chat.waku.peer_exchange.core import ServicePeerPool
from chat.waku.peer_exchange.service import PeerExchangeServer
from chat.waku.peer_exchange.wire import (
    MAX_REQUEST_FRAME,
    PROTOCOL,
    PeerExchangeResponse,
    max_response_frame,
)
from chat.waku.ratelimit import RateLimit, rate_limits_from_flags
from chat.waku.service_node import ServiceNode, ServiceNodeConfig

CLUSTER = 42
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
SETUP = 30.0


def service_config(**options: object) -> ServiceNodeConfig:
    node = NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,))
    return ServiceNodeConfig(node, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def running(*nodes: ServiceNode) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for node in nodes:
            await stack.enter_async_context(node.run())
        yield


def px(node: ServiceNode) -> PeerExchangeServer:
    assert node.peer_exchange is not None
    return node.peer_exchange


def addr_of(node: ServiceNode | Node) -> str:
    plain = node.node if isinstance(node, ServiceNode) else node
    return str(plain.full_multiaddrs()[0])


async def test_a_client_gets_checked_records_of_the_nodes_a_service_node_knows_and_dials_one() -> (
    None
):
    service = ServiceNode(service_config(filter=True, lightpush=True))
    others = [ServiceNode(service_config()) for _ in range(2)]
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    async with running(service, *others), client.run():
        with trio.fail_after(SETUP):
            for other in others:
                await other.node.host.dial(addr_of(service))
            # The service node asks its peers (identify says they serve it) for their records.
            await wait_until(lambda: len(px(service).book.alive(trio.current_time())) == 2)
            await client.host.dial(addr_of(service))
        service_id = service.node.host.peer_id
        result = await request_peers(client.host.libp2p, service_id, 10, cluster_id=CLUSTER)
        assert result.succeeded and not result.dropped
        ids = [p.peer_id for p in result.peers]
        assert ids[0] == service_id  # its own record first
        assert set(ids) == {service_id, *(o.node.host.peer_id for o in others)}
        own = result.peers[0]
        assert own.capabilities == Capability.RELAY | Capability.FILTER | Capability.LIGHTPUSH
        assert own.shards is not None and own.shards.cluster_id == CLUSTER
        assert own.shards.shards == (0,)
        learned = result.peers[1]
        assert learned.capabilities == Capability.RELAY
        # What the client got is enough to reach the node: dial it from the record alone.
        dialled = await client.host.dial(learned.dial_addrs[0])
        assert dialled == learned.peer_id and client.host.is_connected(learned.peer_id)
        # The other two nodes ask it too (they learn from their peers): counted the same way.
        assert px(service).responses[200] >= 1 and px(service).records_sent >= 3


async def test_peer_exchange_is_rate_limited_and_refuses_bad_requests() -> None:
    limits = {**rate_limits_from_flags([]), "px": RateLimit(1, 60.0)}
    service = ServiceNode(service_config(rate_limits=limits))
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    async with running(service), client.run():
        peer = await client.host.dial(addr_of(service))
        first = await request_peers(client.host.libp2p, peer, 5)
        assert first.succeeded and [p.peer_id for p in first.peers] == [peer]
        second = await request_peers(client.host.libp2p, peer, 5)
        assert second.status_code == 429 and not second.peers
    unlimited = ServiceNode(service_config())
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    async with running(unlimited), client.run():
        peer = await client.host.dial(addr_of(unlimited))
        stream = await client.host.libp2p.new_stream(peer, [TProtocol(PROTOCOL)])
        await write_frame(stream, b"\x0a\x02\x08\x00")  # num_peers = 0
        answer = PeerExchangeResponse.decode(await read_frame(stream, 4096))
        assert answer.status_code == 400 and answer.records == ()
        stream = await client.host.libp2p.new_stream(peer, [TProtocol(PROTOCOL)])
        await stream.write(encode_uvarint(MAX_REQUEST_FRAME + 1))
        answer = PeerExchangeResponse.decode(await read_frame(stream, 4096))
        assert answer.status_code == 400 and "over the" in (answer.status_desc or "")


async def test_an_oversized_answer_is_refused_from_its_length_and_bad_records_are_counted() -> None:
    hostile = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    honest = ServiceNode(service_config())
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    mode = {"answer": "huge"}
    body_written = trio.Event()

    async def answer(stream: INetStream) -> None:
        await read_frame(stream, MAX_REQUEST_FRAME)
        if mode["answer"] == "huge":
            # Announce 100 MB, send a little, and keep the stream open.
            await stream.write(encode_uvarint(100 * 2**20) + bytes(1000))
            body_written.set()
            await trio.sleep_forever()
        good = px(honest).own
        assert good is not None
        tampered = bytearray(good.enr.raw)
        tampered[-1] ^= 1
        records = (good.enr.raw, bytes(tampered), bytes(301), b"\xc0")
        await write_frame(stream, PeerExchangeResponse(records).encode())
        await stream.close()

    hostile.host.libp2p.set_stream_handler(TProtocol(PROTOCOL), answer)
    async with running(honest), hostile.run(), client.run():
        peer = await client.host.dial(addr_of(hostile))
        with trio.fail_after(5):  # far less than the exchange's own 10 s time limit
            result = await request_peers(client.host.libp2p, peer, 5)
        assert result.status_code is None and "oversized" in result.description
        assert str(max_response_frame(5)) in result.description
        assert body_written.is_set()
        mode["answer"] = "bad records"
        result = await request_peers(client.host.libp2p, peer, 5)
        assert result.succeeded
        assert [p.peer_id for p in result.peers] == [honest.node.host.peer_id]
        assert result.dropped == {"bad_signature": 1, "too_large": 1, "malformed": 1}


async def test_a_node_without_peer_exchange_does_not_speak_it() -> None:
    service = ServiceNode(service_config(peer_exchange=False))
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    async with running(service), client.run():
        peer = await client.host.dial(addr_of(service))
        result = await request_peers(client.host.libp2p, peer, 5, time_limit=5)
        assert result.status_code is None and not result.peers


async def test_a_light_client_fails_over_from_a_dead_node_to_the_next_and_its_pool_grows() -> None:
    service, other = ServiceNode(service_config(lightpush=True)), ServiceNode(service_config())
    client = Node(NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(0,)))
    # A record of a node that is not there: nothing listens on its port.
    dead = WakuPeer.from_enr(
        node_enr(
            b"\x07" * 32, 1, [Multiaddr("/ip4/127.0.0.1/tcp/1")], Capability.RELAY,
            RelayShards(CLUSTER, (0,)),
        )
    )  # fmt: skip
    async with running(service, other), client.run():
        with trio.fail_after(SETUP):
            await other.node.host.dial(addr_of(service))
            await wait_until(lambda: len(px(service).book.alive(trio.current_time())) == 1)
        bootstrap = px(service).own
        assert bootstrap is not None
        pool = ServicePeerPool(size=4)
        # Seeded from records only, as a light client given two `enr:` strings would be.
        pool.add([dead, WakuPeer.from_text(bootstrap.enr.text)])
        result = await ask_pool(client.host.libp2p, pool, 10, cluster_id=CLUSTER)
        assert result is not None and result.peer == str(service.node.host.peer_id)
        assert pool.failovers == 1
        now = trio.current_time()
        assert dead not in pool.usable(now) and len(pool) == 3
        assert pool.pick(now, Capability.LIGHTPUSH) == bootstrap
        assert other.node.host.peer_id in [p.peer_id for p in pool.usable(now)]


async def test_a_node_behind_nat_announces_its_external_addresses_in_its_record() -> None:
    announce = (Multiaddr("/ip4/203.0.113.5/tcp/60000"), Multiaddr("/dns4/px.example/tcp/443/wss"))
    service = ServiceNode(service_config(announce=announce))
    async with running(service):
        own = px(service).own
        assert own is not None
        assert (own.enr.ip, own.enr.tcp) == ("203.0.113.5", 60000)
        assert own.multiaddrs == announce[1:]
        suffix = f"/p2p/{own.peer_id}"
        assert [str(a) for a in own.dial_addrs] == [str(a) + suffix for a in announce]
