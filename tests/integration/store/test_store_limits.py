"""What parallel store queries can make a node hold (issue 13): between real py-libp2p hosts,
a response stays within its byte budget and the cursors still reach everything; open
queries are bounded per peer and in total, refused unread beyond that; only a few query
and send at once, the others wait their turn."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import trio
from harness.archives import ArchiveBackend
from harness.stall_proxy import stall_proxy
from harness.waiting import wait_until
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chat.waku.message import WakuMessage
from chat.waku.request_gate import GateLimits
from chat.waku.store.client import StoreClient, StoreClientError, new_request_id
from chat.waku.store.server import StoreServer
from chat.waku.store.wire import PROTOCOL_ID, StoreQueryRequest
from chat.waku.write_pace import WritePace
from storage.archive import Archive, ArchiveQuery, ArchiveRecord, ArchiveRow, SqliteArchive

from .conftest import HostFactory, connect

PUBSUB = "/waku/2/rs/42/0"
TOPIC = "/app/1/big/proto"
T0 = 1_700_000_000 * 10**9
BIG = [
    WakuMessage(payload=i.to_bytes(4, "big") * 35_000, content_topic=TOPIC, timestamp=T0 + i)
    for i in range(30)
]  # 30 messages of 140 KB: one full page would be 4.2 MB


def fill_big(archive: Archive) -> None:
    archive.insert_many(
        [ArchiveRecord(m.hash(PUBSUB), PUBSUB, TOPIC, m.timestamp, m.encode()) for m in BIG]
    )


def full_page() -> StoreQueryRequest:
    return StoreQueryRequest(
        request_id=new_request_id(), include_data=True, pubsub_topic=PUBSUB, pagination_limit=100
    )


async def test_pages_of_large_messages_stay_within_the_budget_and_cursors_reach_all(
    archive_backend: ArchiveBackend, host_factory: HostFactory
) -> None:
    archive = archive_backend.open()
    fill_big(archive)
    server = StoreServer(archive, max_response_bytes=1_000_000)
    async with host_factory() as server_host, host_factory() as client_host:
        server.mount(server_host)
        await connect(client_host, server_host)
        client = StoreClient(client_host)
        first = await client.query(server_host.get_id(), full_page())
        assert first.ok and first.pagination_cursor is not None
        assert sum(len(kv.message.payload) for kv in first.messages if kv.message) <= 1_000_000
        every = await client.query_all(server_host.get_id(), full_page())
    assert [kv.message_hash for kv in every] == [m.hash(PUBSUB) for m in BIG]
    archive.close()


class SlowArchive(SqliteArchive):
    """The real archive, with a query that takes a while (so queries overlap) and a count of
    how many run at once."""

    def __init__(self, path: Path, delay: float = 0.2) -> None:
        super().__init__(path)
        self.delay = delay
        self.running = 0
        self.most_at_once = 0

    def query(self, query: ArchiveQuery) -> list[ArchiveRow]:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.delay)  # a worker thread standing for a slow disk
            return super().query(query)
        finally:
            self.running -= 1


async def test_parallel_queries_are_bounded_per_peer_and_run_a_few_at_a_time(
    tmp_path: Path, host_factory: HostFactory
) -> None:
    archive = SlowArchive(tmp_path / "a.db")
    archive.insert_many(
        [ArchiveRecord(m.hash(PUBSUB), PUBSUB, TOPIC, m.timestamp, m.encode()) for m in BIG]
    )
    gate = GateLimits(per_peer=4, total=6, running=2, running_per_peer=1, max_wait=30.0)
    server = StoreServer(archive, gate=gate, max_response_bytes=500_000)
    statuses: Counter[str] = Counter()
    async with (
        host_factory() as server_host,
        host_factory() as alice,
        host_factory() as bob,
    ):
        server.mount(server_host)
        await connect(alice, server_host)
        await connect(bob, server_host)

        async def one(host: object, name: str) -> None:
            try:
                response = await StoreClient(host).query(server_host.get_id(), full_page())
            except StoreClientError:
                statuses[f"{name}:failed"] += 1
            else:
                statuses[f"{name}:{response.status_code}"] += 1

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one, alice, "alice")

            async def alice_admitted() -> bool:
                return server.gate.core.open >= 4

            await wait_until(alice_admitted, 10)  # Alice's streams arrive over real sockets
            for _ in range(3):
                nursery.start_soon(one, bob, "bob")
    # Alice may hold 4 at once, refused unread beyond (429); of Bob's 3, two fit in the total
    # of 6, and a full server answers the third 503.
    assert statuses == {"alice:200": 4, "alice:429": 6, "bob:200": 2, "bob:503": 1}
    assert server.gate.shed == {
        "peer_busy": 6,
        "server_full": 1,
        "waited_too_long": 0,
        "never_sent": 0,
        "slow_reader": 0,
    }
    # Of the admitted, never more than `running` queried at once.
    assert archive.most_at_once <= 2
    assert server.gate.core.open == 0
    archive.close()


async def test_streams_that_never_send_their_request_cannot_lock_queries_out(
    tmp_path: Path, host_factory: HostFactory
) -> None:
    # js-waku opens store streams eagerly and may never use them; an attacker opens them on
    # purpose, from as many peer ids as he likes. Held open without a byte, they must make
    # room for a query that comes whole, as idle connections do for a new one.
    archive = SqliteArchive(tmp_path / "a.db")
    fill_big(archive)
    gate = GateLimits(per_peer=2, total=4, running=2, running_per_peer=1, max_wait=30.0)
    server = StoreServer(archive, gate=gate, max_response_bytes=500_000)
    async with (
        host_factory() as server_host,
        host_factory() as mallory,
        host_factory() as trudy,
        host_factory() as alice,
    ):
        server.mount(server_host)
        silent = []
        for attacker in (mallory, trudy):
            await connect(attacker, server_host)
            for _ in range(2):
                silent.append(await attacker.new_stream(server_host.get_id(), [PROTOCOL_ID]))

        async def all_held() -> bool:
            return server.gate.core.open == 4

        await wait_until(all_held, 10)
        await trio.sleep(1.5)  # they have been silent for a while
        await connect(alice, server_host)
        with trio.fail_after(5):
            response = await StoreClient(alice).query(server_host.get_id(), full_page())
        assert response.status_code == 200
        for stream in silent:
            await stream.reset()
    archive.close()


@pytest.mark.slow
async def test_a_peer_that_stops_reading_its_answers_gives_up_its_turns_within_seconds(
    tmp_path: Path, host_factory: HostFactory
) -> None:
    # A peer that asks for full pages and then stops reading held both of its turns for
    # the whole 30 s write timeout; a few peer ids held every turn, and every other query
    # waited and was refused. Now each chunk of an answer must get through in time.
    archive = SlowArchive(tmp_path / "a.db", delay=1.0)  # time to stall before it answers
    archive.insert_many(
        [ArchiveRecord(m.hash(PUBSUB), PUBSUB, TOPIC, m.timestamp, m.encode()) for m in BIG]
    )
    gate = GateLimits(per_peer=4, total=16, running=2, running_per_peer=2, max_wait=20.0)
    pace = WritePace(chunk=64 * 1024, min_rate=64 * 1024, min_time=0.5, max_time=30.0)
    server = StoreServer(archive, gate=gate, pace=pace)  # 2 MiB pages: 14 of these messages
    async with (
        host_factory() as server_host,
        host_factory() as mallory,
        host_factory() as alice,
    ):
        server.mount(server_host)
        port = int(server_host.get_addrs()[0].value_for_protocol("tcp"))
        async with stall_proxy(port) as proxy, trio.open_nursery() as nursery:
            relayed = f"/ip4/127.0.0.1/tcp/{proxy.port}/p2p/{server_host.get_id()}"
            await mallory.connect(info_from_p2p_addr(Multiaddr(relayed)))
            for _ in range(2):
                nursery.start_soon(StoreClient(mallory).query, server_host.get_id(), full_page())

            async def both_turns_taken() -> bool:
                return server.gate.core.running == 2

            await wait_until(both_turns_taken, 10)
            proxy.stall()  # Mallory reads nothing from here on: before his answers come
            stalled = trio.current_time()
            await connect(alice, server_host)
            with trio.fail_after(10):
                response = await StoreClient(alice).query(server_host.get_id(), full_page())
            assert response.status_code == 200 and len(response.messages) == 14

            # Both of Mallory's answers were given up on (the first chunks may pass into the
            # socket buffers; the next ones cannot) within seconds, not after 30 s.
            async def both_given_up() -> bool:
                return server.gate.shed["slow_reader"] == 2

            await wait_until(both_given_up, 15)
            assert trio.current_time() - stalled < 15
            assert server.gate.core.running == 0
            nursery.cancel_scope.cancel()
    archive.close()
