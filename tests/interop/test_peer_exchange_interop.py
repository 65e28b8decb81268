"""Peer exchange with a real js-waku light node (@waku/sdk 0.0.36, createLightNode with its own
peer exchange discovery): it asks our `chinwag node` for peers, gets records it accepts (it
checks their signatures), and dials a node it learned of from the record alone."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.cli import build_parser
from chat.commands.node import service_config_from
from chat.config import load_config
from chat.waku.node import NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig

pytestmark = pytest.mark.interop

CLUSTER = 42
SHARD = 0
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
WAIT = 30


def chinwag_node(data_dir: Path) -> ServiceNode:
    """`chinwag node --filter --lightpush` with a /ws listener: peer exchange is on by default."""
    argv = ["--data-dir", str(data_dir), "node", "--listen", LOOPBACK, "--ws-port", "0"]
    argv += ["--cluster", str(CLUSTER), "--shard", str(SHARD), "--filter", "--lightpush"]
    return ServiceNode(
        service_config_from(build_parser().parse_args(argv), load_config(data_dir=data_dir))
    )


@pytest.mark.slow
async def test_js_waku_learns_our_nodes_by_peer_exchange_and_dials_one(
    tmp_path: Path, start_js: Any
) -> None:
    service = chinwag_node(tmp_path)
    others = [
        ServiceNode(ServiceNodeConfig(NodeConfig([Multiaddr(LOOPBACK)], CLUSTER, (SHARD,))))
        for _ in range(2)
    ]
    other_ids = {o.node.host.peer_id.to_base58() for o in others}
    async with AsyncExitStack() as stack:
        for node in (service, *others):
            await stack.enter_async_context(node.run())
        px = service.peer_exchange
        assert px is not None and px.own is not None
        service_addr = next(str(a) for a in service.node.full_multiaddrs() if "/ws" not in str(a))
        with trio.fail_after(WAIT):
            for other in others:
                await other.node.host.dial(service_addr)
            await wait_until(lambda: len(px.book.alive(trio.current_time())) == 2)
        js = await stack.enter_async_context(
            start_js("sdk036", muxer="mplex", clusterId=CLUSTER, peerExchange=True)
        )
        reply = await js.call("dial", addr=service_addr)
        assert reply["peer"] == service.node.host.peer_id.to_base58()

        def discovered() -> set[str]:
            return {e["peer"] for e in js.events if e.get("event") == "discovered"}

        # js-waku asks as soon as identify shows our node serves peer exchange.
        await wait_until(lambda: other_ids <= discovered(), WAIT, what="js to learn both nodes")
        assert px.responses[200] >= 1
        listening = {
            o.node.host.peer_id.to_base58(): [str(a) for a in o.node.host.listen_multiaddrs()]
            for o in others
        }
        for event in js.events:
            if event.get("event") == "discovered" and event["peer"] in other_ids:
                # The addresses js-waku read from the record are where the node listens.
                assert event["addrs"] == listening[event["peer"]]
        target = sorted(other_ids)[0]
        dialled = await js.call("dialDiscovered", peer=target)
        assert dialled["peer"] == target
        owner = next(o for o in others if o.node.host.peer_id.to_base58() == target)
        await wait_until(
            lambda: any(p.to_base58() == js.peer_id for p in owner.node.host.connected_peers()),
            WAIT,
            what="the dialled node to see js connected",
        )
