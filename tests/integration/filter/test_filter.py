"""Filter v2 over real py-libp2p hosts: subscribe, many pushes per stream, TTL, limits, failover."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
import trio
from harness.waiting import wait_until
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamReset
from trio.testing import MockClock

from chat.waku.filter.client import FilterClient
from chat.waku.filter.push_queue import MEMORY_FULL, QUEUE_FULL, PushLimits
from chat.waku.filter.server import FilterServer
from chat.waku.filter.wire import (
    MAX_FRAME_SIZE,
    MAX_RESPONSE_SIZE,
    PUSH_PROTOCOL,
    SUBSCRIBE_PROTOCOL,
    MessagePush,
    SubscribeRequest,
    SubscribeResponse,
)
from chat.waku.framing import encode_frame, encode_uvarint, read_frame
from chat.waku.message import WakuMessage
from chat.waku.reqres import exchange
from chat.waku.request_gate import GateLimits

PUBSUB = "/waku/2/rs/42/0"
TOPIC = "/app/1/chat/proto"


def message(i: int, topic: str = TOPIC, size: int = 0) -> WakuMessage:
    return WakuMessage(payload=b"m%d" % i + b"x" * size, content_topic=topic, timestamp=i + 1)


async def ask(hosts, light, service, request: SubscribeRequest) -> SubscribeResponse:
    frame = await exchange(
        light,
        service.get_id(),
        SUBSCRIBE_PROTOCOL,
        request.encode(),
        max_response_size=MAX_RESPONSE_SIZE,
        time_limit=10,
    )
    return SubscribeResponse.decode(frame)


class CountingLimiter:
    """Allows the first `budget` requests of each peer."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used: dict[Hashable, int] = {}

    def allow(self, peer_id: Hashable, now: float) -> bool:
        self.used[peer_id] = self.used.get(peer_id, 0) + 1
        return self.used[peer_id] <= self.budget


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
async def test_pushes_flow_over_one_stream_and_pings_refresh(hosts, clock: MockClock, muxer):
    service = await hosts.start(muxer)
    light = await hosts.start(muxer)
    await hosts.connect(light, service)
    opened: list[object] = []
    async with trio.open_nursery() as nursery:
        server = FilterServer(service)
        await nursery.start(server.run)
        client = FilterClient(light, [service.get_id()])
        client.subscribe(PUBSUB, [TOPIC])
        await nursery.start(client.run)
        await wait_until(lambda: server.subscriptions.peer_count == 1)
        for i in range(20):
            server.on_message(PUBSUB, message(i))
        server.on_message(PUBSUB, message(3))  # duplicate within 2 min: not pushed
        server.on_message(PUBSUB, message(99, topic="/app/1/other/proto"))  # not subscribed
        got = [await client.messages.receive() for _ in range(20)]
        assert [p.message.payload for p in got] == [b"m%d" % i for i in range(20)]
        assert {p.pubsub_topic for p in got} == {PUBSUB}
        assert server.stats.pushes_sent == 20
        assert server.subscriptions.duplicates_skipped == 1
        pusher = server._pushers[str(light.get_id())]
        opened.append(pusher.stream)
        # 61 s later the client pings; the subscription stays alive past its first TTL.
        for pings in range(1, 7):
            clock.jump(61)
            # Jump only once the answer is in: a jump would also expire the request in flight.
            await wait_until(
                lambda n=pings: server.stats.requests[200] == 1 + n and not client.core.busy_peers
            )
        server.on_message(PUBSUB, message(100))
        assert (await client.messages.receive()).message.payload == b"m100"
        assert server._pushers[str(light.get_id())].stream is opened[0]  # same stream reused
        nursery.cancel_scope.cancel()


async def test_subscription_lapses_after_ttl_then_ping_is_404(hosts, clock: MockClock):
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service)
        await nursery.start(server.run)
        answer = await ask(hosts, light, service, SubscribeRequest("s", 1, PUBSUB, (TOPIC,)))
        assert (answer.request_id, answer.status_code) == ("s", 200)
        assert server.subscribed(light.get_id())  # a full node keeps its connection
        clock.jump(301)
        assert server.on_message(PUBSUB, message(1)) == 0
        assert not server.subscribed(light.get_id())
        answer = await ask(hosts, light, service, SubscribeRequest("p", 0))
        assert (answer.status_code, answer.status_desc) == (
            404,
            "NOT_FOUND: peer has no subscriptions",
        )
        nursery.cancel_scope.cancel()


async def test_bad_requests_get_nwaku_codes_and_nothing_breaks(hosts, clock: MockClock):
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, rate_limiter=CountingLimiter(6))
        await nursery.start(server.run)
        thousand = tuple(f"/app/1/t{i}/proto" for i in range(1000))
        cases = [
            (SubscribeRequest("a", 1, None, (TOPIC,)), 400),
            (SubscribeRequest("b", 1, PUBSUB, ()), 400),
            (SubscribeRequest("c", 1, PUBSUB, thousand), 400),
            (SubscribeRequest("d", 2, PUBSUB, (TOPIC,)), 404),
        ]
        for request, status in cases:
            answer = await ask(hosts, light, service, request)
            assert (answer.request_id, answer.status_code) == (request.request_id, status)
        # Garbage that is not a FilterSubscribeRequest: 400 with an unknown request id.
        stream = await light.new_stream(service.get_id(), [TProtocol(SUBSCRIBE_PROTOCOL)])
        await stream.write(encode_frame(b"\xff\xff\xff"))
        answer = SubscribeResponse.decode(await _read_one(stream))
        assert (answer.request_id, answer.status_code) == ("N/A", 400)
        # A length prefix over the limit is refused without reading the body.
        stream = await light.new_stream(service.get_id(), [TProtocol(SUBSCRIBE_PROTOCOL)])
        await stream.write(encode_uvarint(50_000_000))
        await wait_until(lambda: server.stats.broken_requests == 1)
        # Over the rate limit: nwaku's 429 without reading the body.
        answer = await ask(hosts, light, service, SubscribeRequest("e", 0))
        assert (answer.request_id, answer.status_code) == ("N/A", 429)
        assert answer.status_desc == "filter request rejected due rate limit exceeded"
        assert server.subscriptions.peer_count == 0
        nursery.cancel_scope.cancel()


async def _read_one(stream) -> bytes:
    from chat.waku.framing import read_frame

    return await read_frame(stream, MAX_RESPONSE_SIZE)


async def test_idle_eager_stream_is_reset_and_others_are_served(hosts, clock: MockClock):
    service = await hosts.start("mplex")
    light = await hosts.start("mplex")
    await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, request_timeout=10)
        await nursery.start(server.run)
        idle = await light.new_stream(service.get_id(), [TProtocol(SUBSCRIBE_PROTOCOL)])
        answer = await ask(hosts, light, service, SubscribeRequest("x", 1, PUBSUB, (TOPIC,)))
        assert answer.ok
        clock.jump(11)
        await wait_until(lambda: server.stats.idle_streams_closed == 1)
        # Reset, not half-closed: js-waku would otherwise write its next request into it.
        with pytest.raises(StreamReset):
            await _read_eof(idle)
        nursery.cancel_scope.cancel()


async def _read_eof(stream) -> bool:
    from chat.waku.framing import FrameReader

    return await FrameReader(stream, 10).next_frame() is None


async def test_stalled_subscriber_loses_only_its_own_frames(hosts, clock: MockClock):
    service = await hosts.start("yamux")
    healthy = await hosts.start("yamux")
    stalled = await hosts.start("yamux")
    stalled_streams: list[object] = []

    async def never_read(stream) -> None:
        stalled_streams.append(stream)
        await trio.sleep_forever()

    stalled.set_stream_handler(TProtocol(PUSH_PROTOCOL), never_read)
    for light in (healthy, stalled):
        await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, push_limits=PushLimits(per_subscriber_frames=8))
        await nursery.start(server.run)
        client = FilterClient(healthy, [service.get_id()])
        client.subscribe(PUBSUB, [TOPIC])
        await nursery.start(client.run)
        answer = await ask(hosts, stalled, service, SubscribeRequest("s", 1, PUBSUB, (TOPIC,)))
        assert answer.ok
        await wait_until(lambda: server.subscriptions.peer_count == 2)
        for i in range(60):  # 60 × 100 KiB: past what the stalled side accepts unread
            assert server.on_message(PUBSUB, message(i, size=100 * 1024)) in (1, 2)
            got = await client.messages.receive()
            assert got.message.payload.startswith(b"m%d" % i)
        assert server.stats.pushes_dropped["queue_full"] > 0, (server.stats, stalled_streams)
        assert server.queued_frames(str(stalled.get_id())) <= 8
        nursery.cancel_scope.cancel()


async def test_a_subscriber_that_stops_reading_holds_at_most_its_bytes_however_long(
    hosts, clock: MockClock
):
    # Bounded only in frames, one stalled subscriber held 64 frames of up to 150 KiB (9.6 GB
    # for 1,000 of them); now what each holds is bounded in bytes, and all of them together.
    service = await hosts.start("yamux")
    stalled = [await hosts.start("yamux") for _ in range(3)]
    topics = [f"/app/1/stalled-{index}/proto" for index in range(3)]

    async def never_read(stream) -> None:
        await trio.sleep_forever()

    per_subscriber = PushLimits().per_subscriber_bytes  # the default: 1 MiB
    total = 2 * 1024 * 1024  # in all: less than the 3 subscribers' bounds together
    smallest_frame = len(encode_frame(MessagePush(message(0, size=100 * 1024), PUBSUB).encode()))
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, push_limits=PushLimits(total_bytes=total))
        await nursery.start(server.run)
        for light, topic in zip(stalled, topics, strict=True):
            light.set_stream_handler(TProtocol(PUSH_PROTOCOL), never_read)
            await hosts.connect(light, service)
            assert (await ask(hosts, light, service, SubscribeRequest("s", 1, PUBSUB, (topic,)))).ok
        for i in range(100):  # 100 messages of 100 KiB for each, none read
            for topic in topics:
                server.on_message(PUBSUB, message(i, topic, size=100 * 1024))
            await trio.testing.wait_all_tasks_blocked()
            for light in stalled:
                peer = str(light.get_id())
                assert server.queued_frames(peer) * smallest_frame <= per_subscriber
                assert server.queued_bytes(peer) <= per_subscriber
            assert server.push_queues.total_bytes <= total
        # Every frame is accounted for: pushed, dropped (counted), queued, or being written.
        dropped = server.stats.pushes_dropped
        queued = sum(server.queued_frames(str(light.get_id())) for light in stalled)
        accounted = server.stats.pushes_sent + sum(dropped.values()) + queued
        assert accounted <= 300 <= accounted + 3
        assert dropped[QUEUE_FULL] + dropped[MEMORY_FULL] > 0
        nursery.cancel_scope.cancel()


async def test_disappeared_subscriber_does_not_disturb_others(hosts, clock: MockClock):
    service = await hosts.start()
    staying = await hosts.start()
    leaving = await hosts.start()
    for light in (staying, leaving):
        await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service)
        await nursery.start(server.run)
        clients = [FilterClient(h, [service.get_id()]) for h in (staying, leaving)]
        for client in clients:
            client.subscribe(PUBSUB, [TOPIC])
            await nursery.start(client.run)
        await wait_until(lambda: server.subscriptions.peer_count == 2)
        hosts.stop(leaving)
        for i in range(10):
            server.on_message(PUBSUB, message(i))
            assert (await clients[0].messages.receive()).message.payload == b"m%d" % i
        # The push to the vanished peer fails (refused or timed out), and is counted.
        clock.jump(21)
        await wait_until(lambda: sum(server.stats.pushes_dropped.values()) >= 1)
        clock.jump(301 + 60)  # the lapsed subscription is swept by maintenance
        await wait_until(lambda: server.subscriptions.peer_count <= 1)
        nursery.cancel_scope.cancel()


async def test_client_dedupes_two_nodes_and_fails_over_when_one_dies(hosts, clock: MockClock):
    nodes = [await hosts.start() for _ in range(3)]
    light = await hosts.start()
    for node in nodes:
        await hosts.connect(light, node)
    async with trio.open_nursery() as nursery:
        servers = [FilterServer(node) for node in nodes]
        for server in servers:
            await nursery.start(server.run)
        client = FilterClient(light, [node.get_id() for node in nodes])
        client.subscribe(PUBSUB, [TOPIC])
        await nursery.start(client.run)
        await wait_until(
            lambda: (
                [s.subscriptions.peer_count for s in servers] == [1, 1, 0]
                and not client.core.busy_peers
            )
        )
        # Both nodes push the same message; the application sees it once.
        servers[0].on_message(PUBSUB, message(1))
        servers[1].on_message(PUBSUB, message(1))
        assert (await client.messages.receive()).message.payload == b"m1"
        await wait_until(lambda: client.core.duplicates_dropped == 1)
        # Node 0 dies; the next ping fails, re-subscribing fails, node 2 takes its place.
        hosts.stop(nodes[0])
        clock.jump(61)
        await wait_until(lambda: servers[2].subscriptions.peer_count == 1)
        assert client.core.active_peers == [str(nodes[1].get_id()), str(nodes[2].get_id())]
        servers[2].on_message(PUBSUB, message(2))
        assert (await client.messages.receive()).message.payload == b"m2"
        nursery.cancel_scope.cancel()


async def test_requests_open_at_once_are_bounded_per_peer_and_refused_unread(hosts) -> None:
    """Beyond 4 subscribe streams open at once, a peer is answered 429 at once (issue 13)."""
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, request_timeout=30.0)
        await nursery.start(server.run)
        protocol = [TProtocol(SUBSCRIBE_PROTOCOL)]
        held = [await light.new_stream(service.get_id(), protocol) for _ in range(4)]

        async def four_open() -> bool:
            return server.gate.core.open >= 4

        await wait_until(four_open, 10)  # the streams arrive over a real socket
        extra = await light.new_stream(service.get_id(), protocol)
        with trio.fail_after(5):
            answer = SubscribeResponse.decode(await read_frame(extra, MAX_FRAME_SIZE))
        assert (answer.request_id, answer.status_code) == ("N/A", 429)
        assert server.gate.shed["peer_busy"] == 1
        for stream in held:
            await stream.reset()
        nursery.cancel_scope.cancel()


async def test_streams_that_never_send_their_request_make_room_for_one_that_does(hosts) -> None:
    """Silent subscribe streams from many peer ids cannot fill the server: once they have sent
    nothing for the grace, a new request takes the place of the oldest (issue 13)."""
    service = await hosts.start()
    async with trio.open_nursery() as nursery:
        server = FilterServer(service, request_timeout=30.0, gate=GateLimits(per_peer=1, total=2))
        await nursery.start(server.run)
        silent = []
        for _ in range(2):
            attacker = await hosts.start()
            await hosts.connect(attacker, service)
            stream = await attacker.new_stream(service.get_id(), [TProtocol(SUBSCRIBE_PROTOCOL)])
            silent.append(stream)

        async def both_open() -> bool:
            return server.gate.core.open == 2

        await wait_until(both_open, 10)
        await trio.sleep(1.5)  # silent past the grace
        light = await hosts.start()
        await hosts.connect(light, service)
        with trio.fail_after(5):
            answer = await ask(hosts, light, service, SubscribeRequest("s", 1, PUBSUB, (TOPIC,)))
        assert (answer.request_id, answer.status_code) == ("s", 200)
        assert server.gate.shed["never_sent"] == 1
        for stream in silent:
            await stream.reset()
        nursery.cancel_scope.cancel()
