"""Real py-libp2p nodes on 127.0.0.1: dialing, the metadata handshake, cluster checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.host import ConnectionEventKind, Direction, generate_node_key
from chat.waku.metadata.core import MetadataOutcome, Verdict
from chat.waku.metadata.wire import METADATA_PROTOCOL, ShardInfo
from chat.waku.node import Node, NodeConfig

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
DEADLINE = 15


def make_node(cluster: int = 42, shards: tuple[int, ...] = (0, 1)) -> Node:
    return Node(NodeConfig(listen_addrs=[LOOPBACK], cluster_id=cluster, shards=shards))


@asynccontextmanager
async def running(*nodes: Node) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for node in nodes:
            await stack.enter_async_context(node.run())
        yield


async def outcome_for(
    channel: trio.MemoryReceiveChannel[MetadataOutcome], peer: ID
) -> MetadataOutcome:
    async for outcome in channel:
        if outcome.peer_id == peer:
            return outcome
    raise AssertionError("outcome channel closed")


async def test_same_cluster_peers_exchange_shards_and_stay_connected() -> None:
    a, b = make_node(shards=(0, 1)), make_node(shards=(1, 5))
    a_outcomes, b_outcomes = a.metadata.subscribe(), b.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(a, b):
            addr = a.full_multiaddrs()[0]
            assert str(addr).endswith(f"/p2p/{a.host.peer_id.to_base58()}")
            peer = await b.host.dial(addr)
            assert peer == a.host.peer_id
            at_a = await outcome_for(a_outcomes, b.host.peer_id)
            at_b = await outcome_for(b_outcomes, a.host.peer_id)
            assert at_a.verdict is Verdict.ACCEPTED and at_b.verdict is Verdict.ACCEPTED
            assert at_a.remote == ShardInfo(42, (1, 5))
            assert at_b.remote == ShardInfo(42, (0, 1))
            assert a.metadata.book.peers_on(42, 5) == [b.host.peer_id]
            assert a.host.is_connected(b.host.peer_id)
            assert b.host.is_connected(a.host.peer_id)


async def test_peer_on_another_cluster_is_disconnected_and_forgotten() -> None:
    ours, theirs = make_node(cluster=42), make_node(cluster=7)
    outcomes = ours.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(ours, theirs):
            await theirs.host.dial(ours.full_multiaddrs()[0])
            outcome = await outcome_for(outcomes, theirs.host.peer_id)
            assert outcome.verdict is Verdict.WRONG_CLUSTER
            assert outcome.remote is not None and outcome.remote.cluster_id == 7
            # The outcome is published after the disconnect completed.
            assert not ours.host.is_connected(theirs.host.peer_id)
            assert ours.host.libp2p.get_peerstore().addrs(theirs.host.peer_id) == []


async def test_we_dial_and_check_the_remote_too() -> None:
    ours, theirs = make_node(cluster=42), make_node(cluster=43)
    outcomes = ours.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(ours, theirs):
            await ours.host.dial(theirs.full_multiaddrs()[0])
            outcome = await outcome_for(outcomes, theirs.host.peer_id)
            assert outcome.verdict is Verdict.WRONG_CLUSTER


async def test_peer_without_metadata_is_disconnected() -> None:
    ours = make_node()
    bare = make_node()  # its metadata handler is removed below: a plain libp2p peer
    outcomes = ours.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(ours, bare):
            bare.host.libp2p.get_mux().handlers.pop(METADATA_PROTOCOL)
            await bare.host.dial(ours.full_multiaddrs()[0])
            outcome = await outcome_for(outcomes, bare.host.peer_id)
            assert outcome.verdict is Verdict.NO_ANSWER


async def test_connection_events_carry_direction() -> None:
    a, b = make_node(), make_node()
    a_events, b_events = a.host.events.subscribe(), b.host.events.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(a, b):
            await b.host.dial(a.full_multiaddrs()[0])
            at_a = await a_events.receive()
            at_b = await b_events.receive()
            assert at_a.kind is ConnectionEventKind.OPENED and at_a.peer_id == b.host.peer_id
            assert at_a.direction is Direction.INBOUND
            assert at_b.direction is Direction.OUTBOUND
            await b.host.disconnect(a.host.peer_id)
            closed = await a_events.receive()
            assert closed.kind is ConnectionEventKind.CLOSED


async def test_static_peer_is_dialled_on_start() -> None:
    a = make_node()
    outcomes = a.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(a):
            b = Node(
                NodeConfig(
                    listen_addrs=[LOOPBACK],
                    static_peers=(str(a.full_multiaddrs()[0]),),
                    key_pair=generate_node_key(),
                )
            )
            async with b.run():
                outcome = await outcome_for(outcomes, b.host.peer_id)
                assert outcome.verdict is Verdict.ACCEPTED


async def test_silent_metadata_streams_are_reset_and_capped_without_dropping_the_peer() -> None:
    ours, other = make_node(), make_node()
    ours.metadata.idle_stream_timeout = 0.3
    ours.metadata.book.max_inbound_per_peer = 2
    outcomes = ours.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with running(ours, other):
            await other.host.dial(ours.full_multiaddrs()[0])
            assert (await outcome_for(outcomes, other.host.peer_id)).verdict is Verdict.ACCEPTED
            # Like js-waku: open streams eagerly and never write on them. Over the cap, a stream
            # is reset as soon as it is negotiated (the open or the first read fails).
            streams, failures = [], []
            for _ in range(3):
                try:
                    streams.append(
                        await other.host.libp2p.new_stream(ours.host.peer_id, [METADATA_PROTOCOL])
                    )
                except Exception as exc:
                    failures.append(type(exc).__name__)
            for stream in streams:
                try:
                    failures.append(f"read {await stream.read(1)!r}")
                except Exception as exc:
                    failures.append(type(exc).__name__)
            # Nothing was ever answered on a silent stream: each ended in a reset or EOF.
            assert len(failures) == 3
            assert all(f == "read b''" or not f.startswith("read") for f in failures), failures
            assert ours.metadata.streams_refused == 1
            assert ours.metadata.idle_streams_timed_out == 2
            assert ours.metadata.book.inbound_streams(other.host.peer_id) == 0
            assert ours.host.is_connected(other.host.peer_id)
