"""Our node against real js-waku (sdk 0.0.27) and js-libp2p 2.x peers: dialing both ways with
both muxers, Noise, identify, the metadata handshake and the cluster check."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from multiaddr import Multiaddr

from chat.waku.metadata.core import MetadataOutcome, Verdict
from chat.waku.metadata.wire import ShardInfo
from chat.waku.node import Node, NodeConfig

pytestmark = pytest.mark.interop

CASES = [(stack, muxer) for stack in ("sdk027", "gossipsub14") for muxer in ("mplex", "yamux")]
MUXER_IDS = {"mplex": "/mplex/6.7.0", "yamux": "/yamux/1.0.0"}
DEADLINE = 60


def our_node(cluster: int = 42, shards: tuple[int, ...] = (0, 1), ws: bool = False) -> Node:
    addrs = [Multiaddr("/ip4/127.0.0.1/tcp/0")]
    if ws:
        addrs.append(Multiaddr("/ip4/127.0.0.1/tcp/0/ws"))
    return Node(NodeConfig(listen_addrs=addrs, cluster_id=cluster, shards=shards))


async def outcome_for(
    channel: trio.MemoryReceiveChannel[MetadataOutcome], peer: str
) -> MetadataOutcome:
    async for outcome in channel:
        if outcome.peer_id.to_base58() == peer:
            return outcome
    raise AssertionError("no outcome")


async def check_connected_pair(node: Node, js: Any, muxer: str, direction: str) -> None:
    ours = node.host.peer_id.to_base58()
    opened = await js.wait_for(lambda e: e.get("event") == "connection:open" and e["peer"] == ours)
    assert opened["muxer"] == MUXER_IDS[muxer]
    assert opened["encryption"] == "/noise"
    assert opened["direction"] == direction
    identified = await js.wait_for(lambda e: e.get("event") == "identify" and e["peer"] == ours)
    assert identified["agent"].startswith("py-libp2p")
    assert "/vac/waku/metadata/1.0.0" in identified["protocols"]
    assert "/ipfs/ping/1.0.0" in identified["protocols"]
    # js as the metadata client: our server answers with our cluster and shards.
    info = await js.call("metadata", peer=ours)
    assert (info["clusterId"], sorted(info["shards"])) == (42, [0, 1])


@pytest.mark.parametrize(("stack", "muxer"), CASES)
async def test_js_dials_us(start_js: Any, stack: str, muxer: str) -> None:
    node = our_node()
    outcomes = node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with node.run(), start_js(stack, muxer=muxer, clusterId=42, shards=[0, 1]) as js:
            await js.call("dial", addr=str(node.full_multiaddrs()[0]))
            outcome = await outcome_for(outcomes, js.peer_id)
            assert outcome.verdict is Verdict.ACCEPTED
            assert outcome.remote is not None and outcome.remote.cluster_id == 42
            await check_connected_pair(node, js, muxer, "outbound")
            assert node.host.is_connected(outcome.peer_id)


@pytest.mark.parametrize(("stack", "muxer"), CASES)
async def test_we_dial_js(start_js: Any, stack: str, muxer: str) -> None:
    node = our_node()
    outcomes = node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with node.run(), start_js(stack, muxer=muxer, clusterId=42, shards=[0, 1]) as js:
            await node.host.dial(js.addrs[0])
            outcome = await outcome_for(outcomes, js.peer_id)
            assert outcome.verdict is Verdict.ACCEPTED
            await check_connected_pair(node, js, muxer, "inbound")


async def test_js_waku_reads_our_shards_and_we_read_its_field_2(start_js: Any) -> None:
    # js-waku 0.0.27 also copies the shards of our own request into its peer store, but its
    # identify can overwrite that entry at the same moment, so we check what is
    # deterministic: our parse of its answer (field 2 only) and its query of us.
    node = our_node(shards=(0, 1))
    outcomes = node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with node.run(), start_js("sdk027", muxer="mplex", clusterId=42, shards=[1]) as js:
            await js.call("dial", addr=str(node.full_multiaddrs()[0]))
            outcome = await outcome_for(outcomes, js.peer_id)
            assert outcome.remote == ShardInfo(42, (1,))
            info = await js.call("metadata", peer=node.host.peer_id.to_base58())
            assert (info["clusterId"], sorted(info["shards"])) == (42, [0, 1])


async def test_js_waku_dials_our_websocket_listener(start_js: Any) -> None:
    node = our_node(ws=True)
    outcomes = node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with node.run(), start_js("sdk027", muxer="mplex") as js:
            ws_addr = next(str(a) for a in node.full_multiaddrs() if "/ws/" in str(a))
            await js.call("dial", addr=ws_addr)
            outcome = await outcome_for(outcomes, js.peer_id)
            assert outcome.verdict is Verdict.ACCEPTED
            opened = await js.wait_for(lambda e: e.get("event") == "connection:open")
            assert "/ws" in opened["addr"]


@pytest.mark.parametrize("direction", ["js-dials", "we-dial"])
async def test_js_waku_on_another_cluster_is_disconnected(start_js: Any, direction: str) -> None:
    node = our_node(cluster=42)
    outcomes = node.metadata.subscribe()
    with trio.fail_after(DEADLINE):
        async with node.run(), start_js("sdk027", muxer="yamux", clusterId=99, shards=[0]) as js:
            if direction == "js-dials":
                await js.call("dial", addr=str(node.full_multiaddrs()[0]))
            else:
                await node.host.dial(js.addrs[0])
            outcome = await outcome_for(outcomes, js.peer_id)
            assert outcome.verdict is Verdict.WRONG_CLUSTER
            assert outcome.remote is not None and outcome.remote.cluster_id == 99
            ours = node.host.peer_id.to_base58()
            await js.wait_for(lambda e: e.get("event") == "connection:close" and e["peer"] == ours)
            assert not node.host.is_connected(outcome.peer_id)
