"""Light push v3 and v2 over real py-libp2p hosts, and the redundant client's failover."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
import trio
from harness.waiting import wait_until
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError
from trio.testing import MockClock

from chat.waku.framing import read_frame
from chat.waku.lightpush.client import LightPushClient, push_once
from chat.waku.lightpush.server import LightPushServer
from chat.waku.lightpush.wire import (
    MAX_FRAME_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    LegacyPushRequest,
    LegacyPushResponse,
    PushResponse,
)
from chat.waku.message import WakuMessage
from chat.waku.reqres import exchange
from chat.waku.request_gate import GateLimits

PUBSUB = "/waku/2/rs/42/0"
MSG = WakuMessage(payload=b"hello", content_topic="/app/1/chat/proto", timestamp=1_700_000_000)


class Relay:
    def __init__(self, peers: int) -> None:
        self.peers = peers
        self.published: list[tuple[str, WakuMessage]] = []

    def __call__(self, pubsub_topic: str, message: WakuMessage) -> int:
        self.published.append((pubsub_topic, message))
        return self.peers


class CountingLimiter:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0

    def allow(self, peer_id: Hashable, now: float) -> bool:
        self.used += 1
        return self.used <= self.budget


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
async def test_v3_round_trip(hosts, muxer) -> None:
    service = await hosts.start(muxer)
    light = await hosts.start(muxer)
    await hosts.connect(light, service)
    relay = Relay(3)
    LightPushServer(service, relay).start()
    result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert (result.status_code, result.relay_peer_count, result.succeeded) == (200, 3, True)
    assert relay.published == [(PUBSUB, MSG)]
    # Without a pubsub topic and without autosharding: 420, nothing published.
    result = await push_once(light, service.get_id(), MSG, None)
    assert result.status_code == 420
    assert len(relay.published) == 1


async def test_v3_bad_input_and_rate_limit(hosts) -> None:
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    relay = Relay(1)
    LightPushServer(service, relay, rate_limiter=CountingLimiter(2)).start()
    answer = PushResponse.decode(
        await exchange(
            light,
            service.get_id(),
            PROTOCOL_V3,
            b"\xff\xff",
            max_response_size=MAX_FRAME_SIZE,
            time_limit=10,
        )
    )
    assert (answer.request_id, answer.status_code) == ("N/A", 400)
    big = WakuMessage(payload=b"x" * 200_000, content_topic="/app/1/chat/proto", timestamp=5)
    result = await push_once(light, service.get_id(), big, PUBSUB)
    assert result.status_code == 420
    result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert result.status_code == 429
    assert result.description == "Request rejected due to too many requests"
    assert relay.published == []


async def test_v2_round_trip_and_failure(hosts) -> None:
    service = await hosts.start("mplex")
    light = await hosts.start("mplex")
    await hosts.connect(light, service)
    relay = Relay(2)
    server = LightPushServer(service, relay, rate_limiter=CountingLimiter(2))
    server.start()

    async def ask(payload: bytes) -> LegacyPushResponse:
        frame = await exchange(
            light,
            service.get_id(),
            PROTOCOL_V2,
            payload,
            max_response_size=MAX_FRAME_SIZE,
            time_limit=10,
        )
        return LegacyPushResponse.decode(frame)

    answer = await ask(LegacyPushRequest("r1", PUBSUB, MSG).encode())
    assert (answer.request_id, answer.is_success, answer.info) == ("r1", True, "OK")
    relay.peers = 0
    answer = await ask(LegacyPushRequest("r2", PUBSUB, MSG).encode())
    assert (answer.request_id, answer.is_success) == ("r2", False)
    assert answer.info == "No peers for topic, skipping publish"
    answer = await ask(LegacyPushRequest("r3", PUBSUB, MSG).encode())
    assert (answer.request_id, answer.is_success) == ("N/A", False)
    assert answer.info == "Request rejected due to too many requests"


async def test_a_node_speaking_only_v2_is_pushed_to_over_v2(hosts) -> None:
    service = await hosts.start("yamux")
    light = await hosts.start("yamux")
    await hosts.connect(light, service)
    relay = Relay(2)
    LightPushServer(service, relay).start()
    service.remove_stream_handler(TProtocol(PROTOCOL_V3))  # an old node: v2 only
    result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert (result.status_code, result.succeeded) == (200, True)
    assert relay.published == [(PUBSUB, MSG)]
    relay.peers = 0
    result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert result.status_code == 505 and "No peers" in result.description
    # v2 has no autosharding: without a pubsub topic the message is refused, not sent.
    result = await push_once(light, service.get_id(), MSG, None)
    assert result.status_code == 400 and len(relay.published) == 2


async def test_idle_stream_is_reset(hosts, clock: MockClock) -> None:
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    server = LightPushServer(service, Relay(1))
    server.start()
    idle = await light.new_stream(service.get_id(), [TProtocol(PROTOCOL_V3)])
    result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert result.succeeded
    clock.jump(11)
    with trio.fail_after(5), pytest.raises(Exception):  # noqa: B017 - EOF or reset, by muxer
        await read_frame(idle, MAX_FRAME_SIZE)
    # Reset, not half-closed: js-waku would otherwise write its next request into it.
    with pytest.raises(StreamError):
        await idle.write(b"\x00")


async def test_redundant_push_fails_over_when_a_node_dies(hosts, clock: MockClock) -> None:
    nodes = [await hosts.start() for _ in range(3)]
    light = await hosts.start()
    for node in nodes:
        await hosts.connect(light, node)
    relays = [Relay(2) for _ in nodes]
    for node, relay in zip(nodes, relays, strict=True):
        LightPushServer(node, relay).start()
    client = LightPushClient(light, [n.get_id() for n in nodes])
    report = await client.push(MSG, PUBSUB)
    assert report.succeeded
    assert [a.status_code for a in report.attempts] == [200, 200]
    assert [len(r.published) for r in relays] == [1, 1, 0]
    # Node 0 dies: this push still succeeds through node 1; node 0 is replaced by node 2.
    hosts.stop(nodes[0])
    report = await client.push(MSG, PUBSUB)
    assert report.succeeded
    by_peer = {a.peer: a.status_code for a in report.attempts}
    assert by_peer == {str(nodes[0].get_id()): None, str(nodes[1].get_id()): 200}
    assert client.pool.active == [str(nodes[1].get_id()), str(nodes[2].get_id())]
    report = await client.push(MSG, PUBSUB)
    assert [a.status_code for a in report.attempts] == [200, 200]
    assert [len(r.published) for r in relays] == [1, 3, 1]


async def test_rate_limited_push_is_retried_after_a_backoff(hosts, clock: MockClock) -> None:
    node = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, node)
    relay = Relay(1)
    limiter = CountingLimiter(2)
    LightPushServer(node, relay, rate_limiter=limiter).start()
    client = LightPushClient(light, [node.get_id()], max_attempts=2)
    assert (await client.push(MSG, PUBSUB)).succeeded
    assert (await client.push(MSG, PUBSUB)).succeeded
    reports = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(client, reports))
        await wait_until(lambda: limiter.used == 3)
        start = trio.current_time()
        clock.jump(1.0)  # skip the 1 s backoff before the retry
    (report,) = reports
    assert not report.succeeded
    assert [(a.attempt, a.status_code) for a in report.attempts] == [(1, 429), (2, 429)]
    assert trio.current_time() - start >= 1.0
    assert client.pool.active == [str(node.get_id())]  # 429 never replaces a node


async def _collect(client: LightPushClient, reports: list[object]) -> None:
    reports.append(await client.push(MSG, PUBSUB))


async def test_requests_open_at_once_are_bounded_per_peer_and_refused_unread(hosts) -> None:
    """A peer that opens streams and sends nothing holds a request each until its timeout;
    beyond 4 at once it is answered 429 at once, unread (issue 13)."""
    service = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, service)
    server = LightPushServer(service, Relay(1), request_timeout=30.0)
    server.start()
    held = [await light.new_stream(service.get_id(), [TProtocol(PROTOCOL_V3)]) for _ in range(4)]

    # Stream handlers start when the remote sees the streams: wait until all four are open.
    async def four_open() -> bool:
        return server.gate.core.open >= 4

    await wait_until(four_open, 10)  # the streams arrive over a real socket
    extra = await light.new_stream(service.get_id(), [TProtocol(PROTOCOL_V3)])
    with trio.fail_after(5):
        answer = PushResponse.decode(await read_frame(extra, MAX_FRAME_SIZE))
    assert (answer.request_id, answer.status_code) == ("N/A", 429)
    assert server.gate.shed["peer_busy"] == 1
    for stream in held:
        await stream.reset()


async def test_streams_that_never_send_their_request_make_room_for_one_that_does(hosts) -> None:
    """Silent streams from as many peer ids as an attacker likes cannot fill the server: once
    they have sent nothing for the grace, a new request takes the place of the oldest."""
    service = await hosts.start()
    server = LightPushServer(
        service, Relay(1), request_timeout=30.0, gate=GateLimits(per_peer=1, total=2)
    )
    server.start()
    silent = []
    for _ in range(2):
        attacker = await hosts.start()
        await hosts.connect(attacker, service)
        silent.append(await attacker.new_stream(service.get_id(), [TProtocol(PROTOCOL_V3)]))

    async def both_open() -> bool:
        return server.gate.core.open == 2

    await wait_until(both_open, 10)
    await trio.sleep(1.5)  # silent past the grace
    light = await hosts.start()
    await hosts.connect(light, service)
    with trio.fail_after(5):
        result = await push_once(light, service.get_id(), MSG, PUBSUB)
    assert result.status_code == 200
    assert server.gate.shed["never_sent"] == 1
    for stream in silent:
        await stream.reset()


async def test_a_node_dropped_from_the_pool_while_its_push_is_in_flight(
    hosts, clock: MockClock
) -> None:
    # The light client drops a node for good (LightCore.drop: it pushed filter messages for
    # topics never asked) while a push to it waits for an answer: the push ends with that
    # node's failure, it does not raise.
    slow = await hosts.start()
    light = await hosts.start()
    await hosts.connect(light, slow)
    asked = trio.Event()

    async def never_answer(stream) -> None:
        asked.set()
        await trio.sleep_forever()

    slow.set_stream_handler(TProtocol(PROTOCOL_V3), never_answer)
    client = LightPushClient(light, [slow.get_id()], max_attempts=1, time_limit=5.0)
    reports: list[object] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(client, reports))
        await asked.wait()
        client.pool.candidates.remove(str(slow.get_id()))
        clock.jump(6)
    (report,) = reports
    assert [a.status_code for a in report.attempts] == [None]
