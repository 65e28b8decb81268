"""Two store nodes archiving into one PostgreSQL database: relay brings each message to
both, the database holds it once, and either node's store answers with the whole history."""

from __future__ import annotations

import trio
from harness.archives import ArchiveBackend
from harness.sync import CONTENT, SHARD0, archived_hashes, sync_node
from harness.waiting import wait_until

from chat.waku.message import WakuMessage, now_ns
from chat.waku.store.archiver import ArchiveOutcome
from chat.waku.store.client import StoreClient
from chat.waku.store.wire import StoreQueryRequest

PUBLISHED = 60


async def test_two_store_nodes_share_one_database(
    postgres_archive_backend: ArchiveBackend,
) -> None:
    shared = postgres_archive_backend.location("shared")
    node_a, node_b = sync_node(shared, options=None), sync_node(shared, options=None)
    publisher = sync_node(postgres_archive_backend.location("publisher"), options=None)
    with trio.fail_after(120):
        async with node_a.run(), node_b.run(), publisher.run():
            for node in (node_a, node_b):
                await publisher.node.host.dial(node.node.full_multiaddrs()[0])
            await publisher.relay.driver.wait_until(lambda r: len(r.mesh.get(SHARD0, ())) >= 2)
            sent = []
            for index in range(PUBLISHED):
                message = WakuMessage(f"shared {index}".encode(), CONTENT, timestamp=now_ns())
                sent.append(message.hash(SHARD0))
                publisher.relay.publish(SHARD0, message)

            def handled(outcome: ArchiveOutcome) -> int:
                return sum(n.archiver.outcomes[outcome] for n in (node_a, node_b) if n.archiver)

            await wait_until(
                lambda: (
                    handled(ArchiveOutcome.STORED) + handled(ArchiveOutcome.DUPLICATE)
                    == 2 * PUBLISHED
                ),
                what="both nodes to archive every message",
            )
            # Each message was stored by exactly one of them; the other found it there.
            assert handled(ArchiveOutcome.STORED) == PUBLISHED
            assert handled(ArchiveOutcome.DUPLICATE) == PUBLISHED
            assert node_a.archive is not None
            assert await trio.to_thread.run_sync(node_a.archive.message_count) == PUBLISHED
            assert await trio.to_thread.run_sync(archived_hashes, node_b.archive) == set(sent)
            client = StoreClient(publisher.node.host.libp2p)
            for node in (node_a, node_b):
                request = StoreQueryRequest(
                    request_id=f"q{id(node)}", include_data=True, pubsub_topic=SHARD0,
                    content_topics=(CONTENT,), pagination_limit=100,
                )  # fmt: skip
                pages = await client.query_all(node.node.host.peer_id, request)
                answered = [kv.message_hash for kv in pages]
                assert len(answered) == PUBLISHED and set(answered) == set(sent)
