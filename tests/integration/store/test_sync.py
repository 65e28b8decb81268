"""Waku Sync between real store nodes (ServiceNodes on loopback): a node that was down catches
up with exactly what it missed; three nodes that each missed a third converge; bad input from
a peer is refused and counted."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
from harness.archives import ArchiveBackend
from harness.sync import (
    CLUSTER,
    CONTENT,
    LOOPBACK,
    SHARD0,
    archived_hashes,
    fill,
    history,
    record_of,
    sync_node,
)
from harness.waiting import wait_until
from libp2p.custom_types import TProtocol
from trio.testing import MockClock

from chat.waku.framing import FrameReader, encode_uvarint, read_frame, write_frame
from chat.waku.message import WakuMessage, message_hash, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair
from chat.waku.service_node import ServiceNode
from chat.waku.store.archiver import ArchiveOutcome
from chat.waku.sync.core import ItemIndex, SyncSession
from chat.waku.sync.service import MAX_ANSWERING, RECONCILIATION, ROUND_TIMEOUT
from chat.waku.sync.wire import (
    MAX_ITEMS,
    MAX_PAYLOAD_SIZE,
    RECONCILIATION_PROTOCOL,
    TRANSFER_PROTOCOL,
    ZERO_HASH,
    SyncId,
    decode_payload,
    encode_payload,
    encode_transfer,
)
from chat.waku.topics import RelayShard

PUBLISHED = 1000
HEADER = b"\x01" + bytes([len(SHARD0)]) + SHARD0.encode() + b"\x00\x00"
"""A payload's start: our pubsub topic, no content topics, start timestamp 0."""


@pytest.fixture
def clock() -> MockClock:
    """Real-speed time that a test can jump forward (pytest-trio runs tests on it)."""
    return MockClock(rate=1.0)


CONVERGE = 60.0


async def same_archives(*nodes: ServiceNode) -> bool:
    sets = [await trio.to_thread.run_sync(archived_hashes, node.archive) for node in nodes]
    return all(s == sets[0] for s in sets[1:])


@pytest.mark.slow
async def test_a_node_that_was_down_gets_exactly_what_it_missed(
    archive_backend: ArchiveBackend,
) -> None:
    shared = history(50)
    node_a = sync_node(archive_backend.location("a"))
    fill(node_a.archive, shared)
    node_b = sync_node(archive_backend.location("b"))
    fill(node_b.archive, shared)
    node_b.archive.close()  # type: ignore[union-attr]  # B is down: only its file exists
    publisher = sync_node(archive_backend.location("publisher"), options=None)
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

            node_b = sync_node(archive_backend.location("b"))  # restarted on its old archive
            async with node_b.run():
                await node_b.node.host.dial(node_a.node.full_multiaddrs()[0])
                started = trio.current_time()
                await wait_until(lambda: same_archives(node_a, node_b), CONVERGE,
                                 what="both archives to hold the same set")  # fmt: skip
                took = trio.current_time() - started
                sync_a, sync_b = node_a.sync, node_b.sync
                assert sync_a is not None and sync_b is not None
                # Only what B missed crossed the wire, once, and nothing went the other way.
                await wait_until(lambda: sync_a.counters["items_sent"] == PUBLISHED)
                assert sync_b.counters["items_received"] == PUBLISHED
                assert sync_b.counters["items_sent"] == 0
                assert sync_a.counters["items_received"] == 0
                refused = {k: v for k, v in sync_b.counters.items() if "refused" in k}
                assert refused == {} and sync_b.strikes.total == 0
                metrics = {m.name: m for m in await node_b.collect_metrics()}
                received = metrics["chinwag_sync_messages_total"].samples
                assert any(s.value == PUBLISHED for s in received)
                archive = await trio.to_thread.run_sync(archived_hashes, node_b.archive)
                assert len(archive) == PUBLISHED + len(shared)
    print(f"caught up {PUBLISHED} messages in {took:.1f} s")


@pytest.mark.slow
async def test_three_nodes_that_each_missed_a_third_converge(
    archive_backend: ArchiveBackend,
) -> None:
    thirds = [history(100, end_ns=now_ns() - (3 - n) * 10**9) for n in range(3)]
    nodes = [sync_node(archive_backend.location(str(n))) for n in range(3)]
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

            def received() -> int:  # new messages archived from sync, all nodes
                return sum(node.sync.counters["items_received"] for node in nodes if node.sync)

            # Counted once the archive call returns, a moment after the rows are visible.
            await wait_until(lambda: received() >= 300, 10, what="300 messages counted")
            assert received() == 300  # each node received its missing third, once


async def run_session_as(host: Any, node: ServiceNode, items: list[SyncId]) -> SyncSession:
    """Drive one reconciliation session from a raw py-libp2p host with our own `items`."""
    start, end = now_ns() - 3600 * 10**9, now_ns()
    session = SyncSession(ItemIndex(items), (SHARD0,))
    stream = await host.new_stream(node.node.host.peer_id, [RECONCILIATION])
    payload = session.start(start, end)
    while True:
        await write_frame(stream, encode_payload(payload))
        if not payload.ranges:
            break
        received = decode_payload(await read_frame(stream, MAX_PAYLOAD_SIZE))
        if not received.ranges:
            break
        payload = session.respond(received)
    await stream.close()
    return session


async def send_raw(host: Any, node: ServiceNode, protocol: str, frames: list[bytes]) -> bytes:
    """Write frames on a new stream; what the node answers (b"" when it ends the stream)."""
    try:
        stream = await host.new_stream(node.node.host.peer_id, [TProtocol(protocol)])
        for frame in frames:
            await write_frame(stream, frame)
        with trio.fail_after(5):
            return await stream.read(65536) or b""
    except Exception:  # the node reset the stream (a refusal may come before negotiation ends)
        return b""


def attacker_node() -> Node:
    """A plain node of the cluster (it passes the metadata handshake) that speaks no sync."""
    return Node(NodeConfig(listen_addrs=[LOOPBACK], cluster_id=CLUSTER, shards=(0,)))


async def test_bad_input_is_refused_and_scored(tmp_path: Path) -> None:
    node = sync_node(tmp_path / "node.sqlite")
    with trio.fail_after(30):
        async with node.run(), attacker_node().run() as peer:
            await peer.host.dial(node.node.full_multiaddrs()[0])
            attacker = peer.host.libp2p
            sync = node.sync
            assert sync is not None
            # A malformed range (unknown range type) and an oversized item list: refused.
            header = HEADER
            assert (
                await send_raw(attacker, node, RECONCILIATION_PROTOCOL, [header + b"\x05\x07"])
                == b""
            )
            count = MAX_ITEMS + 1
            oversized = header + b"\x05\x02" + bytes([0x80 | count & 0x7F, count >> 7])
            assert await send_raw(attacker, node, RECONCILIATION_PROTOCOL, [oversized]) == b""
            await wait_until(lambda: sync.sessions["refused"] == 2)
            assert sync.strikes.total == 2

    node = sync_node(tmp_path / "node2.sqlite")
    with trio.fail_after(30):
        async with node.run(), attacker_node().run() as peer:
            await peer.host.dial(node.node.full_multiaddrs()[0])
            attacker = peer.host.libp2p
            sync = node.sync
            assert sync is not None
            # A valid session in which we claim one message the node lacks...
            claimed = WakuMessage(b"claimed", CONTENT, timestamp=now_ns() - 10**9)
            other_shard = RelayShard(CLUSTER, 5).pubsub_topic
            item = (claimed.timestamp, message_hash(SHARD0, claimed))
            await run_session_as(attacker, node, [item])
            await wait_until(lambda: sync.sessions["completed"] == 1)
            # ... then send it on another shard: refused, struck, not archived.
            wrong = encode_transfer(other_shard, claimed.encode())
            await send_raw(attacker, node, TRANSFER_PROTOCOL, [wrong])
            await wait_until(lambda: sync.counters["refused_other_shard"] == 1)
            # A message nobody asked for: refused too; a third strike bans the peer.
            unasked = WakuMessage(b"unasked", CONTENT, timestamp=now_ns() - 10**9)
            await send_raw(attacker, node, TRANSFER_PROTOCOL,
                           [encode_transfer(SHARD0, unasked.encode())])  # fmt: skip
            await wait_until(lambda: sync.counters["refused_unasked"] == 1)
            await send_raw(attacker, node, RECONCILIATION_PROTOCOL, [b"\xff"])
            await wait_until(lambda: sync.strikes.total == 3)
            refused_before = sync.sessions["refused"]
            await send_raw(attacker, node, RECONCILIATION_PROTOCOL, [header])
            await wait_until(lambda: sync.sessions["refused"] == refused_before + 1)
            assert await trio.to_thread.run_sync(archived_hashes, node.archive) == set()
            metrics = {m.name: m for m in await node.collect_metrics()}
            refused = {s.labels: s.value for s in metrics["chinwag_sync_refused_total"].samples}
            assert refused[(("reason", "other_shard"),)] == 1


@pytest.mark.slow
async def test_nodes_of_other_shards_do_not_sync_and_are_not_blamed(tmp_path: Path) -> None:
    ours = sync_node(tmp_path / "ours.sqlite")
    theirs = sync_node(tmp_path / "theirs.sqlite", shards=(1,))
    fill(ours.archive, history(10))
    with trio.fail_after(30):
        async with ours.run(), theirs.run():
            await theirs.node.host.dial(ours.node.full_multiaddrs()[0])
            sync_ours, sync_theirs = ours.sync, theirs.sync
            assert sync_ours is not None and sync_theirs is not None
            await wait_until(
                lambda: sync_ours.sessions["mismatch"] + sync_theirs.sessions["mismatch"] >= 2
            )
            assert sync_ours.strikes.total == sync_theirs.strikes.total == 0
            assert sync_theirs.counters["items_received"] == 0
            assert await trio.to_thread.run_sync(archived_hashes, theirs.archive) == set()


async def test_a_silent_session_is_ended_after_its_round_timeout(
    tmp_path: Path, clock: MockClock
) -> None:
    node = sync_node(tmp_path / "node.sqlite")
    with trio.fail_after(60):
        async with node.run(), attacker_node().run() as peer:
            await peer.host.dial(node.node.full_multiaddrs()[0])
            sync = node.sync
            assert sync is not None
            # Both handshakes done first, so that the jump times out only the silent session.
            node_id, peer_id = node.node.host.peer_id, peer.host.peer_id
            await wait_until(lambda: node.node.metadata.book.get(peer_id) is not None)
            await wait_until(lambda: peer.metadata.book.get(node_id) is not None)
            stream = await peer.host.libp2p.new_stream(node_id, [RECONCILIATION])
            await wait_until(lambda: str(peer_id) in sync._answering)
            clock.jump(ROUND_TIMEOUT + 1)
            await wait_until(lambda: sync.sessions["failed"] == 1)
            # The peer is not held as busy: its next session is answered.
            session = await run_session_as(peer.host.libp2p, node, [])
            assert session.done or not session.we_need
            await wait_until(lambda: sync.sessions["completed"] == 1)
            await stream.reset()


async def test_sessions_answered_at_once_are_bounded(tmp_path: Path) -> None:
    node = sync_node(tmp_path / "node.sqlite")
    peers = [attacker_node() for _ in range(MAX_ANSWERING + 1)]
    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(node.run())
            for peer in peers:
                await stack.enter_async_context(peer.run())
                await peer.host.dial(node.node.full_multiaddrs()[0])
            sync = node.sync
            assert sync is not None
            # MAX_ANSWERING peers open a session and go silent: they hold every place ...
            for peer in peers[:MAX_ANSWERING]:
                await peer.host.libp2p.new_stream(node.node.host.peer_id, [RECONCILIATION])
            await wait_until(lambda: len(sync._answering) == MAX_ANSWERING)
            # ... so one more peer's session is refused, not loaded.
            late = peers[-1].host.libp2p
            assert await send_raw(late, node, RECONCILIATION_PROTOCOL, [HEADER]) == b""
            await wait_until(lambda: sync.sessions["refused"] == 1)
            assert sync.strikes.total == 0


async def test_on_a_protected_shard_only_signed_messages_are_taken(tmp_path: Path) -> None:
    pair = ShardKeyPair.generate()
    protected = {SHARD0: pair.public_key}
    stamp = now_ns() - 10**9
    signed = pair.sign(SHARD0, WakuMessage(b"signed", CONTENT, timestamp=stamp))
    node_a = sync_node(tmp_path / "a.sqlite", protected=protected)
    node_b = sync_node(tmp_path / "b.sqlite", protected=protected)
    fill(node_a.archive, [record_of(signed)])
    unsigned = WakuMessage(b"unsigned", CONTENT, timestamp=stamp)
    with trio.fail_after(30):
        async with node_a.run(), node_b.run(), attacker_node().run() as peer:
            await node_b.node.host.dial(node_a.node.full_multiaddrs()[0])
            await wait_until(lambda: same_archives(node_a, node_b))
            # A peer that claims an unsigned message on the protected shard is refused.
            sync = node_b.sync
            assert sync is not None
            await peer.host.dial(node_b.node.full_multiaddrs()[0])
            item = (unsigned.timestamp, message_hash(SHARD0, unsigned))
            await run_session_as(peer.host.libp2p, node_b, [item])
            await send_raw(peer.host.libp2p, node_b, TRANSFER_PROTOCOL,
                           [encode_transfer(SHARD0, unsigned.encode())])  # fmt: skip
            await wait_until(lambda: sync.counters["refused_unsigned"] == 1)
            held = await trio.to_thread.run_sync(archived_hashes, node_b.archive)
            assert held == {message_hash(SHARD0, signed)}


async def test_a_peer_speaking_nwakus_bytes_syncs_with_us(tmp_path: Path) -> None:
    """A raw peer writes nwaku's payloads byte by byte (built here from nwaku's codec rules,
    not with our encoder): our node answers in the same layout and sends what the peer lacks
    as nwaku's WakuMessageAndTopic (topic = 1, message = 2)."""
    node = sync_node(tmp_path / "node.sqlite")
    records = history(10)
    fill(node.archive, records)
    start, end = now_ns() - 3600 * 10**9, now_ns()
    # Our shard's topic (count 1, length, bytes); content topics: none (all).
    topics = b"\x01" + bytes([len(SHARD0)]) + SHARD0.encode() + b"\x00"
    window = topics + encode_uvarint(start) + encode_uvarint(end - start)
    transferred: list[bytes] = []
    with trio.fail_after(30):
        async with node.run(), attacker_node().run() as peer:

            async def take_transfer(stream: Any) -> None:
                reader = FrameReader(stream, MAX_PAYLOAD_SIZE)
                while (frame := await reader.next_frame()) is not None:
                    transferred.append(frame)

            peer.host.libp2p.set_stream_handler(TProtocol(TRANSFER_PROTOCOL), take_transfer)
            await peer.host.dial(node.node.full_multiaddrs()[0])
            stream = await peer.host.libp2p.new_stream(node.node.host.peer_id, [RECONCILIATION])
            # nwaku's first payload while it holds nothing: one fingerprint of zero over the window.
            await write_frame(stream, window + b"\x01" + ZERO_HASH)
            answer = await read_frame(stream, MAX_PAYLOAD_SIZE)
            items = sorted((r.timestamp, r.message_hash) for r in records)
            expected = window + b"\x02\x0a"  # the whole window as an item set of ten
            last = 0
            for timestamp, digest in items:
                expected += encode_uvarint(timestamp - last) + digest
                last = timestamp
            assert answer == expected + b"\x00"  # not yet reconciled
            # nwaku answers with its own (empty) item set, reconciled; our node is done.
            await write_frame(stream, window + b"\x02\x00\x01")
            assert await read_frame(stream, MAX_PAYLOAD_SIZE) == b"\x00"
            await wait_until(lambda: len(transferred) == 10)
            await stream.close()
    by_hash = {r.message_hash: r.message for r in records}
    head = b"\x0a" + bytes([len(SHARD0)]) + SHARD0.encode() + b"\x12"  # topic, then message
    hashes = set()
    for frame in transferred:
        assert frame.startswith(head)
        length, message = frame[len(head)], frame[len(head) + 1 :]
        assert length == len(message) < 128  # (a one-byte length: these messages are short)
        hashes.add(message_hash(SHARD0, WakuMessage.decode(message)))
    assert hashes == set(by_hash)
