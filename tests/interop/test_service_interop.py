"""Our store, filter and light push servers against a real js-waku light node (@waku/sdk 0.0.36,
createLightNode, libp2p 2.8): a service node meshed with a second relay node, as in issue 4.

The trio clock is a MockClock running at wall-clock speed, so timeouts towards the Node.js
process behave normally, and a test can still jump it to lapse a filter subscription or an
idle stream without sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
import trio
import trio.testing
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.cli import build_parser
from chat.commands.node import service_config_from
from chat.config import load_config
from chat.waku.filter.server import FilterServer
from chat.waku.filter.server_core import SUBSCRIPTION_TTL
from chat.waku.filter.wire import (
    PUSH_PROTOCOL,
    SUBSCRIBE_PROTOCOL,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeType,
)
from chat.waku.lightpush.server import LightPushServer
from chat.waku.lightpush.wire import PROTOCOL_V3 as LIGHTPUSH_V3
from chat.waku.lightpush.wire import LightPushStatus
from chat.waku.message import WakuMessage, message_hash, now_ns
from chat.waku.metadata.core import Verdict
from chat.waku.node import Node, NodeConfig
from chat.waku.relay.service import RelayService
from chat.waku.service_node import ServiceNode, ServiceNodeConfig
from chat.waku.store.archiver import ArchiveOutcome
from chat.waku.store.server import StoreServer
from chat.waku.store.wire import PROTOCOL_ID as STORE_PROTOCOL
from chat.waku.topics import RelayShard
from storage.archive import Archive

pytestmark = pytest.mark.interop

T = TypeVar("T")
CLUSTER = 42
SHARD = 0
TOPIC = RelayShard(CLUSTER, SHARD).pubsub_topic
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
SETUP_TIMEOUT = 30
WAIT = 20
MS = 1_000_000


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Wall-clock speed, but `clock.jump` lets a test skip minutes (picked up by pytest-trio)."""
    return trio.testing.MockClock(rate=1.0)


class Seen(Generic[T]):
    """Items as they arrive, with a way to wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = trio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, done: Callable[[list[T]], bool], within: float = WAIT) -> None:
        with trio.fail_after(within):
            while not done(self.items):
                await self._changed.wait()


# -- the service node: what `chinwag node` builds ----------------------------------------


@dataclass
class Service:
    """A ServiceNode built from `chinwag node`'s own options, and what the tests watch on it
    through its public parts."""

    composed: ServiceNode
    archive: Archive
    store: StoreServer
    filter: FilterServer
    lightpush: LightPushServer
    archived: Seen[bytes] = field(default_factory=Seen)
    """Hashes of the messages the archive writer stored, in order."""
    answered: Seen[tuple[str, int, int]] = field(default_factory=Seen)
    """(peer, request type, status code) of each filter request the subscription table
    answered (js sends unsubscribe requests without waiting for the answer)."""

    @property
    def node(self) -> Node:
        return self.composed.node

    @property
    def relay(self) -> RelayService:
        return self.composed.relay

    @property
    def peer_id(self) -> str:
        return str(self.node.host.peer_id.to_base58())

    def addr(self, ws: bool = False) -> str:
        return next(str(a) for a in self.node.full_multiaddrs() if ("/ws/" in str(a)) == ws)


def node_options(data_dir: Path) -> ServiceNodeConfig:
    """`chinwag node --store --filter --lightpush` on shard 0, with a /ws listener, parsed
    by the command's own parser."""
    argv = ["--data-dir", str(data_dir), "node", "--listen", str(LOOPBACK), "--ws-port", "0"]
    argv += ["--cluster", str(CLUSTER), "--shard", str(SHARD), "--store", "--filter"]
    args = build_parser().parse_args([*argv, "--lightpush"])
    return service_config_from(args, load_config(data_dir=data_dir))


@asynccontextmanager
async def service_node(data_dir: Path) -> AsyncIterator[Service]:
    composed = ServiceNode(node_options(data_dir))
    assert composed.archive is not None and composed.archive_writer is not None
    assert composed.store is not None and composed.filter is not None
    assert composed.lightpush is not None
    service = Service(
        composed, composed.archive, composed.store, composed.filter, composed.lightpush
    )

    def on_archived(topic: str, msg: WakuMessage, outcome: ArchiveOutcome) -> None:
        if outcome is ArchiveOutcome.STORED:
            service.archived.add(message_hash(topic, msg))

    def on_answered(peer: str, request: SubscribeRequest, response: SubscribeResponse) -> None:
        service.answered.add((peer, request.kind, response.status_code))

    composed.archive_writer.add_sink(on_archived)
    composed.filter.add_answer_sink(on_answered)
    async with composed.run():
        yield service


@dataclass
class RelayPeer:
    """The second chinwag node: relay only, meshed with the service node."""

    composed: ServiceNode
    received: Seen[WakuMessage] = field(default_factory=Seen)

    @property
    def relay(self) -> RelayService:
        return self.composed.relay

    def publish(self, message: WakuMessage) -> bytes:
        assert self.relay.publish(TOPIC, message) >= 1
        return message_hash(TOPIC, message)


@asynccontextmanager
async def meshed_pair(data_dir: Path) -> AsyncIterator[tuple[Service, RelayPeer]]:
    node = NodeConfig([LOOPBACK], cluster_id=CLUSTER, shards=(SHARD,))
    peer = RelayPeer(ServiceNode(ServiceNodeConfig(node)))
    peer.relay.add_sink(lambda topic, msg, data: peer.received.add(msg))
    async with service_node(data_dir) as service, peer.composed.run():
        with trio.fail_after(SETUP_TIMEOUT):
            await peer.composed.node.host.dial(service.addr())
            for relay in (service.relay, peer.relay):
                await relay.driver.wait_until(lambda r: len(r.mesh.get(TOPIC, ())) >= 1)
        yield service, peer


async def connect_js(js: Any, service: Service, ws: bool = False) -> None:
    """js dials the service node and waits until its sdk would use it for every protocol, and
    until our node has js-waku's answer to its own metadata request."""
    outcomes = service.node.metadata.subscribe()
    reply = await js.call("dial", addr=service.addr(ws))
    assert reply["peer"] == service.peer_id
    await js.call("waitUsable", peer=service.peer_id, shard=SHARD)
    with outcomes, trio.fail_after(WAIT):
        async for outcome in outcomes:
            if outcome.peer_id.to_base58() == js.peer_id:
                assert outcome.verdict is Verdict.ACCEPTED
                break


def message(payload: str, content_topic: str, timestamp: int | None = None) -> WakuMessage:
    return WakuMessage(
        payload.encode(), content_topic, timestamp=now_ns() if timestamp is None else timestamp
    )


def filter_payloads(js: Any) -> list[str]:
    return [e["payload"] for e in js.events if e.get("event") == "filterMessage"]


async def wait_filter_payload(js: Any, payload: str) -> dict[str, Any]:
    return await js.wait_for(
        lambda e: e.get("event") == "filterMessage" and e["payload"] == payload, WAIT
    )


# -- light push ----------------------------------------------------------------------------


@pytest.mark.parametrize("muxer", ["mplex", "yamux"])
async def test_light_push_from_js_is_relayed_and_archived(
    start_js: Any, tmp_path: Path, muxer: str
) -> None:
    topic = "/chinwag/1/lightpush/proto"
    async with (
        meshed_pair(tmp_path) as (service, peer),
        start_js("sdk036", muxer=muxer, clusterId=CLUSTER) as js,
    ):
        await connect_js(js, service)
        for version, legacy in (("v3", False), ("v2", True)):
            payload = f"pushed over {version}"
            reply = await js.call(
                "lightPushSend", contentTopic=topic, shard=SHARD, payload=payload, useLegacy=legacy
            )
            assert reply == {**reply, "successes": [service.peer_id], "failures": []}
            assert service.lightpush.responses[(version, 200)] == 1
            # Relayed: the second node gets it, byte for byte what js built.
            await peer.received.wait_for(lambda got, p=payload: p in _payloads(got))
            relayed = next(m for m in peer.received.items if m.payload == payload.encode())
            assert relayed.content_topic == topic
            assert abs(relayed.timestamp - now_ns()) < 20_000 * MS
            # And archived by the service node.
            pushed_hash = message_hash(TOPIC, relayed)
            await service.archived.wait_for(lambda hashes, h=pushed_hash: h in hashes)


async def test_light_push_without_relay_peers_reports_failure_to_js(
    start_js: Any, tmp_path: Path
) -> None:
    async with (
        service_node(tmp_path) as service,
        start_js("sdk036", muxer="mplex", clusterId=CLUSTER) as js,
    ):
        await connect_js(js, service)
        reply = await js.call(
            "lightPushSend", contentTopic="/chinwag/1/alone/proto", shard=SHARD, payload="x"
        )
        assert reply["successes"] == []
        assert [f["peer"] for f in reply["failures"]] == [service.peer_id]
        assert service.lightpush.responses[("v3", LightPushStatus.NO_PEERS_TO_RELAY)] == 1
        assert service.archive.message_count() == 0


def _payloads(messages: list[WakuMessage]) -> list[str]:
    return [m.payload.decode() for m in messages]


# -- filter ---------------------------------------------------------------------------------


async def test_filter_pushes_to_js_until_it_unsubscribes_or_lapses(
    start_js: Any, tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    a, b, c = (f"/chinwag/1/filter-{x}/proto" for x in "abc")
    async with (
        meshed_pair(tmp_path) as (service, peer),
        start_js("sdk036", muxer="yamux", clusterId=CLUSTER) as js,
    ):
        await connect_js(js, service)
        assert (await js.call("filterSubscribe", contentTopics=[a, b], shard=SHARD))["subscribed"]
        subs = service.filter.subscriptions
        assert subs.criteria_of(js.peer_id) == {(TOPIC, a), (TOPIC, b)}

        # Messages published on the other node, one at a time, all reach js in order.
        sent = []
        for i in range(6):
            payload = f"filtered {i}"
            sent.append(payload)
            peer.publish(message(payload, (a, b)[i % 2]))
            event = await wait_filter_payload(js, payload)
            assert event["contentTopic"] == (a, b)[i % 2]
            assert event["pubsubTopic"] == TOPIC
        assert filter_payloads(js) == sent
        await trio.testing.wait_all_tasks_blocked()  # the pusher counts after its write
        assert service.filter.stats.pushes_sent == 6
        # Every push went over one long-lived filter-push stream.
        streams = (await js.call("streams", peer=service.peer_id))["streams"]
        push_streams = [s for s in streams if s["protocol"] == PUSH_PROTOCOL]
        assert len(push_streams) == 1

        # Unsubscribed from b: a later b message is not pushed. Pushes to js are queued in
        # order on that one stream, so once the a message after it arrives, b would have.
        assert (await js.call("filterUnsubscribe", contentTopics=[b]))["unsubscribed"]
        unsubscribed = (js.peer_id, SubscribeType.UNSUBSCRIBE, 200)
        await service.answered.wait_for(lambda answered: unsubscribed in answered)
        assert subs.criteria_of(js.peer_id) == {(TOPIC, a)}
        peer.publish(message("b after unsubscribe", b))
        peer.publish(message("a after unsubscribe", a))
        await wait_filter_payload(js, "a after unsubscribe")
        assert "b after unsubscribe" not in filter_payloads(js)

        # A ping keeps the subscription; without one for the TTL it lapses.
        assert (await js.call("filterPing", peer=service.peer_id))["success"]
        clock.jump(SUBSCRIPTION_TTL + service.filter.maintenance_interval + 1)
        await trio.testing.wait_all_tasks_blocked()
        assert subs.peer_count == 0
        ping = await js.call("filterPing", peer=service.peer_id)
        assert not ping["success"]
        # The jump also ran the relays' heartbeats minutes ahead; once, under load, the peer
        # had no mesh with the service node for a moment after it (NoPeersReached).
        with trio.fail_after(SETUP_TIMEOUT):
            for relay in (service.relay, peer.relay):
                await relay.driver.wait_until(lambda r: len(r.mesh.get(TOPIC, ())) >= 1)
        peer.publish(message("a after lapse", a))
        # Subscribing again starts afresh: the lapsed criteria do not come back.
        assert (await js.call("filterSubscribe", contentTopics=[c], shard=SHARD))["subscribed"]
        assert subs.criteria_of(js.peer_id) == {(TOPIC, c)}
        peer.publish(message("c fresh", c))
        await wait_filter_payload(js, "c fresh")
        assert "a after lapse" not in filter_payloads(js)


# -- store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    hash: str
    payload: str
    content_topic: str
    timestamp: int


async def publish_history(
    service: Service, peer: RelayPeer, topic: str, other: str, count: int
) -> tuple[list[Published], list[Published], int]:
    """`count` messages on `topic` 100 ms apart (ending ~2 s ago, inside the ±20 s archive
    window) and every fifth moment one on `other`; waits until the service node archived all.
    Returns both lists in store order (timestamp, hash) and the first timestamp in ms."""
    base_ms = now_ns() // MS - 10_000
    ours: list[Published] = []
    others: list[Published] = []
    for i in range(count):
        msg = message(f"history {i}", topic, (base_ms + 100 * i) * MS)
        ours.append(Published(peer.publish(msg).hex(), msg.payload.decode(), topic, msg.timestamp))
        if i % 5 == 0:
            noise = message(f"other {i}", other, (base_ms + 100 * i) * MS)
            others.append(
                Published(peer.publish(noise).hex(), noise.payload.decode(), other, noise.timestamp)
            )
    total = len(ours) + len(others)
    await service.archived.wait_for(lambda hashes: len(hashes) >= total)
    assert service.archive.message_count() == total
    order = sorted(ours + others, key=lambda p: (p.timestamp, bytes.fromhex(p.hash)))
    return [p for p in order if p in ours], [p for p in order if p in others], base_ms


def as_published(entry: dict[str, Any]) -> Published:
    assert entry["pubsubTopic"] == TOPIC
    return Published(
        entry["hash"], entry["payload"], entry["contentTopic"], int(entry["timestampNs"])
    )


def pages_of(reply: dict[str, Any]) -> list[list[Published]]:
    return [[as_published(e) for e in page] for page in reply["pages"]]


async def test_store_queries_through_js_return_exactly_what_was_published(
    start_js: Any, tmp_path: Path
) -> None:
    topic, other = "/chinwag/1/history/proto", "/chinwag/1/noise/proto"
    async with meshed_pair(tmp_path) as (service, peer):
        ours, others, base_ms = await publish_history(service, peer, topic, other, 75)
        async with start_js("sdk036", muxer="mplex", clusterId=CLUSTER) as js:
            await connect_js(js, service)

            async def query(**options: Any) -> list[list[Published]]:
                return pages_of(await js.call("storeQuery", shard=SHARD, **options))

            # Forward, 20 per page: four pages, oldest first, each ascending.
            pages = await query(contentTopics=[topic], forward=True, pageSize=20)
            assert [len(p) for p in pages] == [20, 20, 20, 15]
            assert [m for page in pages for m in page] == ours

            # Backward: newest page first, each page still ascending.
            pages = await query(contentTopics=[topic], forward=False, pageSize=20)
            assert [len(p) for p in pages] == [20, 20, 20, 15]
            assert pages == [ours[55:75], ours[35:55], ours[15:35], ours[0:15]]

            # Both content topics, default page size (20), over 90 messages.
            pages = await query(contentTopics=[topic, other], forward=True)
            assert [len(p) for p in pages] == [20, 20, 20, 20, 10]
            both = sorted(ours + others, key=lambda p: (p.timestamp, bytes.fromhex(p.hash)))
            assert [m for page in pages for m in page] == both

            # A time range. Its ends fall between messages: js-waku turns a Date into ns as
            # ms * 1e6 in floating point, which is off by up to ~128 ns at today's epoch.
            window = {"timeStartMs": base_ms + 950, "timeEndMs": base_ms + 4050}
            pages = await query(contentTopics=[topic], forward=True, pageSize=7, **window)
            assert [len(p) for p in pages] == [7, 7, 7, 7, 3]
            assert [m for page in pages for m in page] == ours[10:41]
            pages = await query(contentTopics=[topic], forward=False, pageSize=7, **window)
            assert [m for page in reversed(pages) for m in page] == ours[10:41]

            # Hash lookups (js also sends the decoders' pubsub topic): found ones, ascending.
            wanted = [ours[70], others[3], ours[2], ours[40]]
            unknown = "ab" * 32
            hashes = [p.hash for p in wanted] + [unknown]
            pages = await query(contentTopics=[topic, other], hashes=hashes)
            assert [m for page in pages for m in page] == sorted(
                wanted, key=lambda p: (p.timestamp, bytes.fromhex(p.hash))
            )
            # Presence only: hashes without the messages (js decodes none of them).
            reply = await js.call(
                "storeQuery", shard=SHARD, contentTopics=[topic], hashes=hashes, includeData=False
            )
            assert [len(page) for page in reply["pages"]] == [4]
            assert reply["pages"][0] == [None] * 4
            assert service.store.status_counts[200] == sum(service.store.status_counts.values())


# -- idle streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("muxer", ["mplex", "yamux"])
async def test_idle_streams_js_opens_on_identify_do_not_break_later_requests(
    start_js: Any, tmp_path: Path, clock: trio.testing.MockClock, muxer: str
) -> None:
    topic = "/chinwag/1/idle/proto"
    async with meshed_pair(tmp_path) as (service, peer):
        stored = peer.publish(message("before js came", topic))
        await service.archived.wait_for(lambda hashes: stored in hashes)
        async with start_js("sdk036", muxer=muxer, clusterId=CLUSTER) as js:
            await connect_js(js, service)
            # js-waku opened streams for our protocols before asking anything on them. A
            # stream still negotiating is listed without a protocol: list again until done.
            served = [STORE_PROTOCOL, SUBSCRIBE_PROTOCOL, LIGHTPUSH_V3]
            opened: set[str] = set()

            async def all_negotiated() -> bool:  # negotiation is I/O in the JS process
                nonlocal opened
                idle = (await js.call("streams", peer=service.peer_id))["streams"]
                opened = {
                    s["protocol"]
                    for s in idle
                    if s["direction"] == "outbound" and s.get("protocol")
                }
                return set(served) <= opened

            await wait_until(all_negotiated, 10, what=lambda: f"{served}, not {opened}")
            # Long enough for our servers to give up on them.
            clock.jump(max(service.store.read_timeout, service.filter.request_timeout) + 1)
            await trio.testing.wait_all_tasks_blocked()
            assert service.filter.stats.idle_streams_closed >= 1
            # Reset, not half-closed: js sees them gone and will not write a request into one.
            await js.call("waitStreamsGone", peer=service.peer_id, protocols=served)

            # Every protocol still answers.
            pages = (await js.call("storeQuery", shard=SHARD, contentTopics=[topic]))["pages"]
            assert [e["payload"] for page in pages for e in page] == ["before js came"]
            push = await js.call("lightPushSend", contentTopic=topic, shard=SHARD, payload="p")
            assert push["successes"] == [service.peer_id]
            await peer.received.wait_for(lambda got: "p" in _payloads(got))
            assert (await js.call("filterSubscribe", contentTopics=[topic], shard=SHARD))[
                "subscribed"
            ]
            peer.publish(message("after idle", topic))
            await wait_filter_payload(js, "after idle")


# -- WebSocket ------------------------------------------------------------------------------


async def test_all_three_over_websocket(start_js: Any, tmp_path: Path) -> None:
    topic = "/chinwag/1/ws/proto"
    async with (
        meshed_pair(tmp_path) as (service, peer),
        start_js("sdk036", muxer="mplex", clusterId=CLUSTER) as js,
    ):
        await connect_js(js, service, ws=True)
        opened = await js.wait_for(lambda e: e.get("event") == "connection:open")
        assert "/ws" in opened["addr"]
        assert (await js.call("filterSubscribe", contentTopics=[topic], shard=SHARD))["subscribed"]
        push = await js.call("lightPushSend", contentTopic=topic, shard=SHARD, payload="ws")
        assert push["successes"] == [service.peer_id]
        await peer.received.wait_for(lambda got: "ws" in _payloads(got))
        # Our own relay sinks feed the filter too: js hears its own pushed message back.
        await wait_filter_payload(js, "ws")
        relayed = next(m for m in peer.received.items if m.payload == b"ws")
        await service.archived.wait_for(lambda hashes: message_hash(TOPIC, relayed) in hashes)
        pages = (await js.call("storeQuery", shard=SHARD, contentTopics=[topic]))["pages"]
        assert [e["hash"] for page in pages for e in page] == [message_hash(TOPIC, relayed).hex()]
