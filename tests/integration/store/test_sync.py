"""Waku Sync between real store nodes (ServiceNodes on loopback): a node that was down catches
up with exactly what it missed; three nodes that each missed a third converge; bad input from
a peer is refused and counted."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio
from harness.sync import (
    CONTENT,
    SHARD0,
    archived_hashes,
    fill,
    history,
    sync_node,
)
from harness.waiting import wait_until

from chat.waku.message import WakuMessage, now_ns
from chat.waku.service_node import ServiceNode
from chat.waku.store.archiver import ArchiveOutcome

PUBLISHED = 1000
CONVERGE = 60.0


async def same_archives(*nodes: ServiceNode) -> bool:
    sets = [await trio.to_thread.run_sync(archived_hashes, node.archive) for node in nodes]
    return all(s == sets[0] for s in sets[1:])


@pytest.mark.slow
async def test_a_node_that_was_down_gets_exactly_what_it_missed(tmp_path: Path) -> None:
    shared = history(50)
    node_a = sync_node(tmp_path / "a.sqlite")
    fill(node_a.archive, shared)
    node_b = sync_node(tmp_path / "b.sqlite")
    fill(node_b.archive, shared)
    node_b.archive.close()  # type: ignore[union-attr]  # B is down: only its file exists
    publisher = sync_node(tmp_path / "publisher.sqlite", options=None)
    with trio.fail_after(120):
        async with node_a.run(), publisher.run():
            await publisher.node.host.dial(node_a.node.full_multiaddrs()[0])
            await node_a.relay.driver.wait_until(lambda r: len(r.mesh.get(SHARD0, ())) >= 1)
            for index in range(PUBLISHED):
                node_a.relay.publish(SHARD0, WakuMessage(f"while B is down {index}".encode(),
                                                         CONTENT, timestamp=now_ns()))  # fmt: skip
            archiver = node_a.archiver
            assert archiver is not None
            await wait_until(lambda: archiver.outcomes[ArchiveOutcome.STORED] == PUBLISHED)

            node_b = sync_node(tmp_path / "b.sqlite")  # restarted on its old archive
            async with node_b.run():
                await node_b.node.host.dial(node_a.node.full_multiaddrs()[0])
                started = trio.current_time()
                await wait_until(lambda: same_archives(node_a, node_b), CONVERGE,
                                 what="both archives to hold the same set")  # fmt: skip
                took = trio.current_time() - started
                assert node_a.sync is not None and node_b.sync is not None
                # Only what B missed crossed the wire, once, and nothing went the other way.
                await wait_until(lambda: node_a.sync.counters["items_sent"] == PUBLISHED)  # type: ignore[union-attr]
                assert node_b.sync.counters["items_received"] == PUBLISHED
                assert node_b.sync.counters["items_sent"] == 0
                assert node_a.sync.counters["items_received"] == 0
                refused = {k: v for k, v in node_b.sync.counters.items() if "refused" in k}
                assert refused == {} and node_b.sync.strikes.total == 0
                metrics = {m.name: m for m in await node_b.collect_metrics()}
                received = metrics["chinwag_sync_messages_total"].samples
                assert any(s.value == PUBLISHED for s in received)
                archive = await trio.to_thread.run_sync(archived_hashes, node_b.archive)
                assert len(archive) == PUBLISHED + len(shared)
    print(f"caught up {PUBLISHED} messages in {took:.1f} s")


@pytest.mark.slow
async def test_three_nodes_that_each_missed_a_third_converge(tmp_path: Path) -> None:
    thirds = [history(100, end_ns=now_ns() - (3 - n) * 10**9) for n in range(3)]
    nodes = [sync_node(tmp_path / f"{n}.sqlite") for n in range(3)]
    for index, node in enumerate(nodes):
        for third, records in enumerate(thirds):
            if third != index:
                fill(node.archive, records)
    with trio.fail_after(90):
        async with AsyncExitStack() as stack:
            for node in nodes:
                await stack.enter_async_context(node.run())
            # A chain: the middle node carries what the ends miss of each other.
            await nodes[1].node.host.dial(nodes[0].node.full_multiaddrs()[0])
            await nodes[2].node.host.dial(nodes[1].node.full_multiaddrs()[0])
            await wait_until(lambda: same_archives(*nodes), CONVERGE,
                             what="three archives to hold the same set")  # fmt: skip
            union = {r.message_hash for records in thirds for r in records}
            assert await trio.to_thread.run_sync(archived_hashes, nodes[0].archive) == union
    received = sum(node.sync.counters["items_received"] for node in nodes if node.sync)
    assert received == 300  # each node received its missing third, once
