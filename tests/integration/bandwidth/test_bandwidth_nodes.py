"""The bandwidth meter on real nodes over loopback: a service node as `chinwag node` builds it
(relay, store) meshed with a relay peer that publishes messages of a known size, and a third
node that asks the store for them. Every byte of every stream is counted under its protocol;
relay bytes are split into gossip control and published messages by kind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.waku.bandwidth import BandwidthMeter, Line, Snapshot
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from chat.waku.store.archiver import ArchiveOutcome
from chat.waku.store.client import StoreClient
from chat.waku.store.wire import StoreQueryRequest
from chat.waku.topics import RelayShard

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
SHARD0 = RelayShard(42, 0).pubsub_topic
SHARD1 = RelayShard(42, 1).pubsub_topic
CHAT_TOPIC = "/chinwag/1/bandwidth-chat/proto"
REQUEST_TOPIC = "/chinwag/1/bandwidth-requests/proto"
MESSAGES = 20
PAYLOAD = 1000
REQUESTS = 5
DEADLINE = 40
RELAY_OVERHEAD = 1.25
"""Per message, relay adds the RPC, the Message and WakuMessage headers, the topics and the
timestamp (about 100 bytes on a 1,000-byte payload); allow a quarter."""

pytestmark = pytest.mark.slow


def _line(lines: tuple[Line, ...], name: str) -> Line:
    return next(line for line in lines if line.name == name)


def _snapshot(meter: BandwidthMeter) -> Snapshot:
    return meter.snapshot(trio.current_time())


@asynccontextmanager
async def meshed(service: ServiceNode, peer: ServiceNode) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(service.run())
        await stack.enter_async_context(peer.run())
        await peer.node.host.dial(service.node.full_multiaddrs()[0])
        # Both sides: the peer publishes, and a router that has not yet meshed the service
        # node (or heard its subscriptions) has no one to give a message to.
        for node in (service, peer):
            await node.relay.driver.wait_until(
                lambda r: all(len(r.mesh.get(t, ())) >= 1 for t in (SHARD0, SHARD1))
            )
        yield


async def test_relay_and_store_bytes_are_counted_per_protocol_and_kind(tmp_path: Path) -> None:
    service = ServiceNode(
        ServiceNodeConfig(
            node=NodeConfig(listen_addrs=[LOOPBACK]),
            store=StoreOptions(tmp_path / "archive.sqlite"),
        )
    )
    peer = ServiceNode(ServiceNodeConfig(node=NodeConfig(listen_addrs=[LOOPBACK])))
    meter = peer.node.host.bandwidth
    meter.kinds.set_topic(CHAT_TOPIC, "chat")
    meter.kinds.set_topic(REQUEST_TOPIC, "contact_request")
    light = Node(NodeConfig(listen_addrs=[LOOPBACK]))
    with trio.fail_after(DEADLINE):
        async with meshed(service, peer), light.run():
            before = _snapshot(meter)
            for i in range(MESSAGES):
                payload = f"{i:04d}".encode() + b"." * (PAYLOAD - 4)
                peer.relay.publish(SHARD0, WakuMessage(payload, CHAT_TOPIC, timestamp=now_ns()))
            for i in range(REQUESTS):
                request = WakuMessage(b"r" * 300 + bytes([i]), REQUEST_TOPIC, timestamp=now_ns())
                peer.relay.publish(SHARD0, request)
            with meter.kinds.sending("sync"):
                peer.relay.publish(SHARD0, WakuMessage(b"s" * 200, CHAT_TOPIC, timestamp=now_ns()))
            assert service.archiver is not None
            archiver = service.archiver
            await wait_until(
                lambda: archiver.outcomes[ArchiveOutcome.STORED] == MESSAGES + REQUESTS + 1
            )
            # What the service node read may lag its archive by nothing: the same task.
            sent = _snapshot(meter)
            received = _snapshot(service.node.host.bandwidth)

            chat_out = _line(sent.kinds, "chat")
            payload_bytes = MESSAGES * PAYLOAD
            assert chat_out.messages_out == MESSAGES  # one mesh peer, one frame each
            assert payload_bytes <= chat_out.bytes_out <= payload_bytes * RELAY_OVERHEAD
            requests_out = _line(sent.kinds, "contact_request")
            assert requests_out.messages_out == REQUESTS
            assert _line(sent.kinds, "sync").messages_out == 1
            assert 200 <= _line(sent.kinds, "sync").bytes_out <= 300
            # Every relay byte the peer wrote is one of the kinds (the stream's
            # multistream negotiation aside, a few dozen bytes).
            relay_out = _line(sent.protocols, "relay").bytes_out
            kinds_out = sum(k.bytes_out for k in sent.kinds)
            assert kinds_out <= relay_out <= kinds_out + 100
            published_now = sum(
                _line(sent.kinds, k).bytes_out - _line(before.kinds, k).bytes_out
                for k in ("chat", "contact_request", "sync")
            )
            assert (
                published_now
                == chat_out.bytes_out + requests_out.bytes_out + _line(sent.kinds, "sync").bytes_out
            )
            # Gossip control (the GRAFTs that built the mesh) and subscriptions, apart.
            assert _line(sent.kinds, "control").bytes_out > 0
            assert _line(sent.kinds, "subscriptions").bytes_out > 0

            # The service node read them all; it has no classifier, so: `message`.
            relay_in = _line(received.protocols, "relay").bytes_in
            assert relay_in >= payload_bytes
            assert _line(received.kinds, "message").messages_in == MESSAGES + REQUESTS + 1
            assert _line(received.kinds, "chat").bytes_in == 0
            assert relay_in <= _line(sent.protocols, "relay").bytes_out  # nothing invented

            # Every stream agreed on a protocol: its negotiation counts there, not as other.
            for snapshot in (sent, received):
                other = _line(snapshot.protocols, "other")
                assert (other.bytes_in, other.bytes_out) == (0, 0)
            # Metadata and identify ran on every connection; the wire carried more than
            # the streams (Noise and yamux framing).
            for snapshot in (sent, received):
                assert _line(snapshot.protocols, "metadata").bytes_out > 0
                assert _line(snapshot.protocols, "identify").bytes_in > 0
                streams = sum(p.bytes_out for p in snapshot.protocols)
                assert snapshot.wire.bytes_out > streams
                assert snapshot.transport.bytes_out == snapshot.wire.bytes_out - streams

            # A store query: counted under store on both sides.
            service_id = await light.host.dial(service.node.full_multiaddrs()[0])
            light_before = _snapshot(light.host.bandwidth)
            found = await StoreClient(light.host.libp2p).query_all(
                service_id,
                StoreQueryRequest(
                    request_id=uuid.uuid4().hex,
                    include_data=True,
                    pubsub_topic=SHARD0,
                    content_topics=(CHAT_TOPIC,),
                    pagination_forward=True,
                ),
            )
            assert len(found) == MESSAGES + 1
            light_after = _snapshot(light.host.bandwidth)
            store_in = _line(light_after.protocols, "store").bytes_in
            assert store_in - _line(light_before.protocols, "store").bytes_in >= payload_bytes
            assert _line(light_after.protocols, "store").bytes_out > 0
            assert _line(light_after.protocols, "relay").bytes_in == 0  # it runs no relay
            served = _line(_snapshot(service.node.host.bandwidth).protocols, "store")
            assert served.bytes_out == store_in
            assert served.bytes_in == _line(light_after.protocols, "store").bytes_out

            # Rates: everything happened within the last minute.
            minute = _line(sent.kinds, "chat").rates[0]
            assert minute.window == "minute"
            assert minute.out_per_s * minute.seconds == pytest.approx(chat_out.bytes_out)
