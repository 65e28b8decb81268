"""A full service node built by chat.waku.service_node, exercised from another host with our
real clients: light push in, relay out, archived, pushed to a filter subscriber, found by
store, and all of it visible on /metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr
from trio.testing import MockClock

from chat.waku.filter.client import FilterClient
from chat.waku.lightpush.client import LightPushClient, push_once
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.relay.metrics import RelayCounters
from chat.waku.service_node import (
    RELAY_DROPS,
    RELAY_FROM_VALIDATOR,
    RELAY_GOSSIP,
    RELAY_TRAFFIC,
    ArchiveWriter,
    ServiceNode,
    ServiceNodeConfig,
    StoreOptions,
)
from chat.waku.store.archiver import ArchiveOutcome, MessageArchiver
from chat.waku.store.client import StoreClient
from chat.waku.store.wire import StoreQueryRequest
from chat.waku.topics import RelayShard, autoshard
from storage.archive import RetentionPolicy, SqliteArchive

Scrape = Callable[[str], Awaitable[dict[str, float]]]
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
SHARD0 = RelayShard(42, 0).pubsub_topic
SHARD1 = RelayShard(42, 1).pubsub_topic
CONTENT = "/chinwag/1/service-node/proto"
AUTOSHARDED = "/auto/1/service-node/proto"
"""Autosharding puts this one on shard 1 of 2 (CONTENT lands on shard 0)."""
DEADLINE = 30


def full_config(tmp_path: Path, **store: object) -> ServiceNodeConfig:
    return ServiceNodeConfig(
        node=NodeConfig(listen_addrs=[LOOPBACK]),
        store=StoreOptions(tmp_path / "archive" / "archive.sqlite", **store),  # type: ignore[arg-type]
        filter=True,
        lightpush=True,
        metrics=("127.0.0.1", 0),
    )


def relay_only() -> ServiceNode:
    return ServiceNode(ServiceNodeConfig(node=NodeConfig(listen_addrs=[LOOPBACK])))


def message(
    text: str, *, size: int = 0, timestamp: int | None = None, content_topic: str = CONTENT
) -> WakuMessage:
    payload = text.encode() + b"." * max(0, size - len(text))
    stamp = now_ns() if timestamp is None else timestamp
    return WakuMessage(payload, content_topic, timestamp=stamp)


@asynccontextmanager
async def meshed(service: ServiceNode, peer: ServiceNode) -> AsyncIterator[None]:
    """Both nodes running, with `peer` in the service node's mesh on every shard."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(service.run())
        await stack.enter_async_context(peer.run())
        await peer.node.host.dial(service.node.full_multiaddrs()[0])
        await service.relay.driver.wait_until(
            lambda r: all(len(r.mesh.get(t, ())) >= 1 for t in (SHARD0, SHARD1))
        )
        yield


class Collected:
    def __init__(self, node: ServiceNode) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        node.relay.add_sink(lambda topic, msg, data: self.payloads.append((topic, msg.payload)))


async def test_light_push_is_relayed_archived_pushed_and_counted(
    tmp_path: Path, scrape: Scrape
) -> None:
    service, peer = ServiceNode(full_config(tmp_path)), relay_only()
    at_peer = Collected(peer)
    light = Node(NodeConfig(listen_addrs=[LOOPBACK]))
    with trio.fail_after(DEADLINE):
        async with meshed(service, peer), light.run(), trio.open_nursery() as nursery:
            assert service.filter is not None and service.archiver is not None
            assert service.metrics is not None
            service_id = await light.host.dial(service.node.full_multiaddrs()[0])
            subscriber = FilterClient(light.host.libp2p, [service_id])
            await nursery.start(subscriber.run)
            subscriber.subscribe(SHARD0, [CONTENT])
            subscriptions = service.filter.subscriptions
            await wait_until(lambda: subscriptions.peer_count == 1)
            # Neither the subscriber nor the mesh peer is closed to make room when full.
            inbound = service.node.host.inbound
            assert inbound.keeps(light.host.peer_id) and inbound.keeps(peer.node.host.peer_id)

            # Light push with an explicit pubsub topic: 200, relayed to the peer.
            pushed = message("hello via light push")
            report = await LightPushClient(light.host.libp2p, [service_id]).push(pushed, SHARD0)
            assert report.succeeded
            assert [(a.status_code, a.relay_peer_count) for a in report.attempts] == [(200, 1)]
            await wait_until(lambda: (SHARD0, pushed.payload) in at_peer.payloads)

            # ... pushed to the filter subscriber ...
            with trio.fail_after(5):
                push = await subscriber.messages.receive()
            assert (push.pubsub_topic, push.message) == (SHARD0, pushed)

            # A message the peer publishes reaches the subscriber through relay too.
            relayed = message("hello from the relay peer")
            peer.relay.publish(SHARD0, relayed)
            with trio.fail_after(5):
                push = await subscriber.messages.receive()
            assert push.message == relayed

            # ... and both are archived and found by store.
            archiver = service.archiver
            await wait_until(lambda: archiver.outcomes[ArchiveOutcome.STORED] == 2)
            store = StoreClient(light.host.libp2p)
            found = await store.query_all(
                service_id,
                StoreQueryRequest(
                    request_id=uuid.uuid4().hex,
                    include_data=True,
                    pubsub_topic=SHARD0,
                    content_topics=(CONTENT,),
                    pagination_forward=True,
                ),
            )
            assert sorted(kv.message.payload for kv in found if kv.message) == sorted(
                [pushed.payload, relayed.payload]
            )
            assert await store.present(service_id, [pushed.hash(SHARD0), b"\x01" * 32]) == {
                pushed.hash(SHARD0)
            }

            # Without a pubsub topic the node autoshards over its shards (0 and 1).
            auto = message("autosharded", content_topic=AUTOSHARDED)
            expected_topic = autoshard(AUTOSHARDED, 42, 2).pubsub_topic
            assert expected_topic == SHARD1
            attempt = await push_once(light.host.libp2p, service_id, auto, None)
            assert (attempt.status_code, attempt.relay_peer_count) == (200, 1)
            await wait_until(lambda: (expected_topic, auto.payload) in at_peer.payloads)

            # Refusals map to light push statuses.
            other_shard = await push_once(
                light.host.libp2p, service_id, message("x"), RelayShard(42, 5).pubsub_topic
            )
            assert other_shard.status_code == 421
            stale = message("stale", timestamp=now_ns() - 10 * 60 * 10**9)
            refused = await push_once(light.host.libp2p, service_id, stale, SHARD0)
            assert refused.status_code == 420 and "refused" in refused.description

            metrics = await scrape(service.metrics.url)
            nursery.cancel_scope.cancel()

    assert metrics['chinwag_lightpush_requests_total{version="v3",status="200"}'] == 2
    assert metrics['chinwag_lightpush_requests_total{version="v3",status="421"}'] == 1
    assert metrics['chinwag_lightpush_requests_total{version="v3",status="420"}'] == 1
    assert metrics['chinwag_store_requests_total{status="200"}'] == 2
    assert metrics['chinwag_filter_requests_total{status="200"}'] >= 1
    assert metrics["chinwag_filter_pushes_total"] == 2
    assert metrics["chinwag_filter_subscribers"] == 1
    assert metrics['chinwag_archive_writes_total{outcome="stored"}'] == 3
    assert metrics["chinwag_archive_messages"] == 3
    assert metrics["chinwag_archive_size_bytes"] > 0
    assert metrics["chinwag_archive_disk_full"] == 0
    assert metrics["chinwag_relay_messages_published_total"] == 2
    assert metrics["chinwag_relay_messages_delivered_total"] >= 1
    assert metrics['chinwag_relay_validation_total{outcome="accept",reason=""}'] >= 3
    ignored = 'chinwag_relay_validation_total{outcome="ignore",reason="timestamp_out_of_window"}'
    assert metrics[ignored] == 1
    assert metrics[f'chinwag_relay_mesh_peers{{topic="{SHARD0}"}}'] == 1
    # The limits' counters (issue 13): the light client and the relay peer came in, nothing
    # was shed, and no request is held any more.
    assert metrics['chinwag_inbound_connections_total{outcome="upgraded"}'] >= 1
    assert metrics['chinwag_inbound_connections_total{outcome="evicted_source_pending_full"}'] == 0
    assert metrics['chinwag_inbound_connections{phase="open"}'] >= 1
    for protocol in ("store", "filter", "lightpush"):
        for reason in ("peer_busy", "server_full", "waited_too_long"):
            key = f'chinwag_requests_shed_total{{protocol="{protocol}",reason="{reason}"}}'
            assert metrics[key] == 0
    assert metrics['chinwag_requests_in_progress{protocol="store"}'] == 0
    assert metrics["chinwag_relay_peers"] == 1
    assert metrics["chinwag_connected_peers"] == 2


async def test_no_relay_peer_is_505_and_nothing_is_archived(tmp_path: Path) -> None:
    service = ServiceNode(full_config(tmp_path))
    light = Node(NodeConfig(listen_addrs=[LOOPBACK]))
    with trio.fail_after(DEADLINE):
        async with service.run(), light.run():
            service_id = await light.host.dial(service.node.full_multiaddrs()[0])
            attempt = await push_once(light.host.libp2p, service_id, message("alone"), SHARD0)
            assert attempt.status_code == 505
            assert service.archive is not None
            assert service.archive.message_count() == 0


async def test_a_full_archive_is_reported_and_the_node_keeps_serving(
    tmp_path: Path, scrape: Scrape
) -> None:
    config = full_config(tmp_path, retention=RetentionPolicy(max_bytes=128 * 1024))
    service, peer = ServiceNode(config), relay_only()
    at_peer = Collected(peer)
    light = Node(NodeConfig(listen_addrs=[LOOPBACK]))
    with trio.fail_after(DEADLINE):
        async with meshed(service, peer), light.run():
            assert service.archiver is not None and service.metrics is not None
            archiver = service.archiver
            service_id = await light.host.dial(service.node.full_multiaddrs()[0])
            client = LightPushClient(light.host.libp2p, [service_id])
            huge = message("huge", size=140 * 1024)  # relayable, but over the archive's cap
            assert (await client.push(huge, SHARD0)).succeeded
            await wait_until(lambda: archiver.outcomes[ArchiveOutcome.DISK_FULL] == 1)
            full = await scrape(service.metrics.url)
            small = message("small")
            assert (await client.push(small, SHARD0)).succeeded
            await wait_until(lambda: archiver.outcomes[ArchiveOutcome.STORED] == 1)
            await wait_until(lambda: (SHARD0, small.payload) in at_peer.payloads)
            after = await scrape(service.metrics.url)
            found = await StoreClient(light.host.libp2p).present(
                service_id, [huge.hash(SHARD0), small.hash(SHARD0)]
            )
    assert (SHARD0, huge.payload) in at_peer.payloads  # relay did not care
    assert full["chinwag_archive_disk_full"] == 1
    assert full['chinwag_archive_writes_total{outcome="disk_full"}'] == 1
    assert after["chinwag_archive_disk_full"] == 0
    assert after["chinwag_archive_size_bytes"] <= 128 * 1024
    assert found == {small.hash(SHARD0)}


async def test_retention_runs_every_interval(tmp_path: Path, clock: MockClock) -> None:
    config = ServiceNodeConfig(
        node=NodeConfig(listen_addrs=[LOOPBACK]),
        store=StoreOptions(
            tmp_path / "a.sqlite",
            retention=RetentionPolicy(max_messages=1),
            retention_interval=600.0,
        ),
    )
    service = ServiceNode(config)
    assert service.archiver is not None and service.archive_writer is not None
    archiver, writer = service.archiver, service.archive_writer
    async with service.run():
        await wait_until(lambda: archiver.retention_passes == 1)  # one pass at start
        # Relay hands messages to the writer exactly as a sink call does.
        for text in ("one", "two"):
            writer.offer(SHARD0, message(text), message(text).encode())
        await wait_until(lambda: archiver.outcomes[ArchiveOutcome.STORED] == 2)
        assert service.archive is not None and service.archive.message_count() == 2
        clock.jump(600)
        await wait_until(lambda: archiver.retention_passes == 2)
        assert service.archive.message_count() == 1


def test_every_relay_counter_is_exported() -> None:
    exported = [*RELAY_TRAFFIC, *RELAY_DROPS, *RELAY_GOSSIP, *RELAY_FROM_VALIDATOR]
    assert sorted(exported) == sorted(RelayCounters().as_dict())


def test_the_archive_queue_is_bounded_and_counts_what_it_drops(tmp_path: Path) -> None:
    archive = SqliteArchive(tmp_path / "a.sqlite")
    writer = ArchiveWriter(MessageArchiver(archive), queue=2)
    for text in ("a", "b", "c", "d"):
        writer.offer(SHARD0, message(text), message(text).encode())
    assert (writer.pending, writer.dropped) == (2, 2)
    archive.close()
