"""Store v3 between real py-libp2p hosts on 127.0.0.1: every query form, pagination, bad input,
rate limiting and idle streams."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from harness.archives import ArchiveBackend
from libp2p.network.stream.exceptions import StreamEOF, StreamError, StreamReset

from chat.waku.framing import encode_frame, read_frame
from chat.waku.message import WakuMessage
from chat.waku.ratelimit import RateLimit, RequestLimiter
from chat.waku.store.client import (
    StoreClient,
    StoreClientError,
    StoreQueryFailed,
    new_request_id,
)
from chat.waku.store.server import StoreServer
from chat.waku.store.wire import (
    MAX_REQUEST_SIZE,
    MAX_RESPONSE_SIZE,
    PROTOCOL_ID,
    StoreQueryRequest,
    StoreQueryResponse,
)
from storage.archive import ArchiveRecord

from .conftest import HostFactory, connect

PUBSUB = "/waku/2/rs/42/0"
OTHER_PUBSUB = "/waku/2/rs/42/1"
T0 = 1_700_000_000 * 10**9
SECOND = 10**9
TOPICS = ("/app/1/a/proto", "/app/1/b/proto", "/app/1/c/proto")


def make_message(i: int) -> WakuMessage:
    return WakuMessage(
        payload=f"message {i}".encode(),
        content_topic=TOPICS[i % 3],
        # Pairs share a timestamp so the hash tie-break is exercised over the wire too.
        timestamp=T0 + (i // 2) * SECOND,
    )


def pubsub_of(i: int) -> str:
    return OTHER_PUBSUB if i % 10 == 9 else PUBSUB


MESSAGES = [make_message(i) for i in range(450)]
ORDERED = sorted(
    range(len(MESSAGES)),
    key=lambda i: (MESSAGES[i].timestamp, MESSAGES[i].hash(pubsub_of(i))),
)


def hash_of(i: int) -> bytes:
    return MESSAGES[i].hash(pubsub_of(i))


class ManualClock:
    """The limiter's clock in these tests: it moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Service:
    server_host: Any
    client_host: Any
    server: StoreServer
    client: StoreClient
    clock: ManualClock

    @property
    def peer(self) -> Any:
        return self.server_host.get_id()


@pytest.fixture
async def service(
    archive_backend: ArchiveBackend, host_factory: HostFactory
) -> AsyncIterator[Service]:
    archive = archive_backend.open()
    archive.insert_many(
        [
            ArchiveRecord(hash_of(i), pubsub_of(i), m.content_topic, m.timestamp, m.encode())
            for i, m in enumerate(MESSAGES)
        ]
    )
    clock = ManualClock()
    server = StoreServer(
        archive, limiter=RequestLimiter(RateLimit(40, 1.0)), clock=clock, read_timeout=2.0
    )
    async with host_factory() as server_host, host_factory() as client_host:
        server.mount(server_host)
        await connect(client_host, server_host)
        yield Service(server_host, client_host, server, StoreClient(client_host), clock)
    archive.close()


def request(**fields: Any) -> StoreQueryRequest:
    return StoreQueryRequest(request_id=new_request_id(), **fields)


async def raw_exchange(host: Any, peer: Any, payload: bytes) -> StoreQueryResponse:
    stream = await host.new_stream(peer, [PROTOCOL_ID])
    await stream.write(payload)
    await stream.close_write()
    raw = await read_frame(stream, MAX_RESPONSE_SIZE)
    await stream.close()
    return StoreQueryResponse.decode(raw)


async def test_content_filter_with_time_range(service: Service) -> None:
    req = request(
        include_data=True,
        pubsub_topic=PUBSUB,
        content_topics=TOPICS[:2],
        time_start=T0 + 10 * SECOND,
        time_end=T0 + 20 * SECOND,
        pagination_forward=True,
    )
    resp = await service.client.query(service.peer, req)
    expected = [
        i
        for i in ORDERED
        if pubsub_of(i) == PUBSUB
        and MESSAGES[i].content_topic in TOPICS[:2]
        and T0 + 10 * SECOND <= MESSAGES[i].timestamp <= T0 + 20 * SECOND
    ]
    assert (resp.status_code, resp.status_desc, resp.request_id) == (200, "OK", req.request_id)
    assert [kv.message_hash for kv in resp.messages] == [hash_of(i) for i in expected]
    assert [kv.message for kv in resp.messages] == [MESSAGES[i] for i in expected]
    assert {kv.pubsub_topic for kv in resp.messages} == {PUBSUB}
    assert resp.pagination_cursor is None


async def test_pubsub_topic_only_and_backward_default(service: Service) -> None:
    resp = await service.client.query(service.peer, request(pubsub_topic=OTHER_PUBSUB))
    expected = [hash_of(i) for i in ORDERED if pubsub_of(i) == OTHER_PUBSUB]
    # Backward is the default: the newest 20, listed ascending, cursor = oldest of them.
    assert [kv.message_hash for kv in resp.messages] == expected[-20:]
    assert resp.pagination_cursor == expected[-20]


async def test_hash_lookup_with_data_and_presence_query(service: Service) -> None:
    wanted = (hash_of(5), hash_of(300), hash_of(9))
    resp = await service.client.query(
        service.peer, request(include_data=True, message_hashes=wanted)
    )
    assert [kv.message_hash for kv in resp.messages] == [hash_of(5), hash_of(9), hash_of(300)]
    assert resp.messages[1].pubsub_topic == OTHER_PUBSUB
    assert resp.messages[2].message == MESSAGES[300]
    missing = hashlib.sha256(b"never published").digest()
    present = await service.client.present(
        service.peer, [hash_of(i) for i in range(0, 450, 3)] + [missing]
    )
    assert present == {hash_of(i) for i in range(0, 450, 3)}


@pytest.mark.parametrize("forward", [True, False])
async def test_pagination_over_more_than_three_pages(service: Service, forward: bool) -> None:
    req = request(include_data=True, pagination_forward=forward, pagination_limit=100)
    pages = [page async for page in service.client.pages(service.peer, req)]
    assert len(pages) == 5
    everything = await service.client.query_all(service.peer, req)
    assert [kv.message_hash for kv in everything] == [hash_of(i) for i in ORDERED]
    position = {hash_of(i): n for n, i in enumerate(ORDERED)}
    for page in pages:
        places = [position[kv.message_hash] for kv in page.messages]
        assert places == sorted(places)  # every page is ascending, whatever the direction
    first_page = [position[kv.message_hash] for kv in pages[0].messages]
    assert first_page == (list(range(100)) if forward else list(range(350, 450)))


@pytest.mark.parametrize(
    ("fields", "code", "desc"),
    [
        (
            {
                "content_topics": tuple(f"/app/1/t{i}/proto" for i in range(1000)),
                "pubsub_topic": PUBSUB,
            },
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: too many content topics",
        ),
        (
            {"pagination_cursor": bytes(32)},
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: all zeroes cursor hash",
        ),
        (
            {"pagination_cursor": b"\xaa" * 12},
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: invalid cursor hash length: 12",
        ),
        (
            {"pagination_cursor": b"\xaa" * 32},
            300,
            "BAD_RESPONSE: archive error: DRIVER_ERROR: cursor not found",
        ),
        (
            {
                "message_hashes": (b"\x01" * 32,),
                "content_topics": TOPICS[:1],
                "pubsub_topic": PUBSUB,
            },
            400,
            "BAD_REQUEST: message hashes cannot be combined with a content filter",
        ),
    ],
)
async def test_bad_queries_get_nwaku_status_codes(
    service: Service, fields: dict[str, Any], code: int, desc: str
) -> None:
    req = request(**fields)
    resp = await service.client.query(service.peer, req)
    assert (resp.status_code, resp.status_desc, resp.request_id) == (code, desc, req.request_id)
    with pytest.raises(StoreQueryFailed):
        await service.client.query_all(service.peer, req)


async def test_huge_page_size_is_clamped_and_inverted_range_is_empty(service: Service) -> None:
    resp = await service.client.query(service.peer, request(pagination_limit=10**9))
    assert resp.status_code == 200 and len(resp.messages) == 100
    resp = await service.client.query(
        service.peer, request(time_start=T0 + 100 * SECOND, time_end=T0 + 10 * SECOND)
    )
    assert resp.status_code == 200 and resp.messages == () and resp.pagination_cursor is None


async def test_undecodable_and_oversized_requests_are_400(service: Service) -> None:
    host, peer = service.client_host, service.peer
    missing_id = await raw_exchange(host, peer, encode_frame(b"\x10\x01"))  # include_data only
    assert (missing_id.status_code, missing_id.request_id) == (400, "")
    assert missing_id.status_desc.startswith("decoding rpc failed: ")
    garbage = await raw_exchange(host, peer, encode_frame(b"\xff\xff\xff\xff"))
    assert garbage.status_code == 400
    oversized = await raw_exchange(host, peer, encode_frame(bytes(MAX_REQUEST_SIZE + 1)))
    assert oversized.status_code == 400
    # The service is unharmed.
    ok = await service.client.query(service.peer, request())
    assert ok.status_code == 200


async def test_a_flooding_peer_gets_429_and_others_are_still_served(
    service: Service, host_factory: HostFactory
) -> None:
    async with host_factory() as flooder:
        await connect(flooder, service.server_host)
        flood_client = StoreClient(flooder)
        codes: list[int] = []
        rejections: list[StoreQueryResponse] = []
        for _ in range(60):
            resp = await flood_client.query(service.peer, request())
            codes.append(resp.status_code)
            if resp.status_code == 429:
                rejections.append(resp)
        # 40/1s: one peer gets at most 75 % of a second's volume.
        assert codes.count(200) == 30 and codes.count(429) == 30
        assert {(r.request_id, r.status_desc) for r in rejections} == {("N/A", "TOO_MANY_REQUESTS")}
        # A limited peer's body is never read: garbage still gets 429, not 400.
        limited = await raw_exchange(flooder, service.peer, encode_frame(b"\xff\xff"))
        assert limited.status_code == 429
        # Within the same second, another peer is answered.
        for _ in range(5):
            resp = await service.client.query(service.peer, request(pagination_limit=5))
            assert resp.status_code == 200 and len(resp.messages) == 5
        service.clock.now += 1.0
        resp = await flood_client.query(service.peer, request())
        assert resp.status_code == 200


async def test_streams_that_never_write_are_dropped_without_blocking_others(
    service: Service,
) -> None:
    idle = [await service.client_host.new_stream(service.peer, [PROTOCOL_ID]) for _ in range(5)]
    resp = await service.client.query(service.peer, request(pagination_limit=3))
    assert resp.status_code == 200 and len(resp.messages) == 3
    # The server gives up on each idle stream after its read timeout and resets it (a
    # half-closed one would look writable to js-waku, which reuses eagerly opened streams).
    with trio.fail_after(30):
        for stream in idle:
            with pytest.raises((StreamEOF, StreamReset)):  # yamux may report a reset as EOF
                await stream.read(1024)
            with pytest.raises(StreamError):
                await stream.write(b"\x00")
    assert service.server.status_counts[200] >= 1


async def test_client_times_out_on_a_silent_server(host_factory: HostFactory) -> None:
    async def silent(stream: Any) -> None:
        await trio.sleep_forever()

    async with host_factory() as server_host, host_factory() as client_host:
        server_host.set_stream_handler(PROTOCOL_ID, silent)
        await connect(client_host, server_host)
        client = StoreClient(client_host, timeout=0.5)
        with pytest.raises(StoreClientError, match="no store response"):
            await client.query(server_host.get_id(), request())
