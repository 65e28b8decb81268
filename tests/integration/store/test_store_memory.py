"""A real `chinwag node --store` process under parallel full-page queries of large messages
(issue 13): its memory stays near idle during the burst and returns after it.

Before the limits, 40 parallel full pages of 140 KB messages (30 stored, so 4.2 MB a page)
took the node over a gigabyte (every response built at once, ~42 MB each with its copies,
and kept by glibc afterwards). Memory is a figure of the node, not of the machine's speed,
so it is asserted, with a wide margin."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import trio
from harness.processes import Chinwag, ChinwagProcess
from harness.waiting import wait_until
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.lightpush.client import push_once
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.store.client import StoreClient, StoreClientError, new_request_id
from chat.waku.store.wire import StoreQueryRequest

TOPIC = "/waku/2/rs/42/0"
CONTENT = "/memory/1/big/proto"
MESSAGES = 30
PAYLOAD = 140_000
PARALLEL = 40
CLIENTS = 4
# Pushing 30 messages quickly is what this test needs, not what the limits are for.
LOOSE = ("--rate-limit", "lightpush:100000/1s", "--rate-limit", "store:100000/1s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def start_node(chinwag: Chinwag, *args: str) -> tuple[ChinwagProcess, str, str]:
    process = await chinwag.start(
        "node", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0",
        "--node-key", str(chinwag.data_dir / f"key-{len(chinwag.processes)}"), *args,
    )  # fmt: skip
    assert (await process.line()).startswith("chinwag node ")
    address = await process.line()
    while not (line := await process.line()).startswith("metrics "):
        pass
    return process, address, line.removeprefix("metrics ")


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(url)).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return max(values, default=0.0)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
async def test_parallel_full_pages_of_large_messages_keep_the_node_near_idle(
    tmp_path: Path,
) -> None:
    chinwag = Chinwag(tmp_path)
    try:
        _, relay_addr, _ = await start_node(chinwag)
        service, address, metrics = await start_node(
            chinwag, "--store", "--archive", str(tmp_path / "archive.sqlite"), "--lightpush",
            "--peer", relay_addr, *LOOSE,
        )  # fmt: skip

        async def meshed() -> bool:
            return await metric(metrics, "chinwag_relay_mesh_peers") >= 1

        await wait_until(meshed, 60)
        peer = ID.from_base58(Multiaddr(address).value_for_protocol("p2p"))
        nodes = [Node(NodeConfig(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]))
                 for _ in range(CLIENTS)]  # fmt: skip
        async with nodes[0].run(), nodes[1].run(), nodes[2].run(), nodes[3].run():
            for node in nodes:
                await node.host.dial(address)
            for i in range(MESSAGES):
                message = WakuMessage(
                    i.to_bytes(4, "big") + os.urandom(PAYLOAD), CONTENT, timestamp=now_ns()
                )
                pushed = await push_once(nodes[0].host.libp2p, peer, message, TOPIC)
                assert pushed.succeeded, pushed

            async def archived() -> bool:
                return await metric(metrics, "chinwag_archive_messages") >= MESSAGES

            await wait_until(archived, 60)
            idle = rss_mb(service.process.pid)
            peak = idle
            statuses: list[int] = []

            async def query(node: Node) -> None:
                request = StoreQueryRequest(
                    new_request_id(), include_data=True, pubsub_topic=TOPIC, pagination_limit=100
                )
                try:
                    response = await StoreClient(node.host.libp2p, timeout=60).query(peer, request)
                    statuses.append(response.status_code)
                except StoreClientError:
                    statuses.append(0)

            async with trio.open_nursery() as nursery:
                for i in range(PARALLEL):
                    nursery.start_soon(query, nodes[i % CLIENTS])
                while len(statuses) < PARALLEL:
                    peak = max(peak, rss_mb(service.process.pid))
                    await trio.sleep(0.02)  # sampling the node's memory while it works
            await trio.sleep(1)
            after = rss_mb(service.process.pid)
    finally:
        await chinwag.close()
    assert statuses.count(200) >= PARALLEL // 2, statuses
    assert peak - idle < 150, (idle, peak)
    assert after - idle < 100, (idle, after)
