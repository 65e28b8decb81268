"""Peer exchange codec, the server's book, the client's checks and the failover pool."""

from __future__ import annotations

import random

import pytest
from multiaddr import Multiaddr

from chat.waku.enr.record import MAX_RECORD_SIZE, Enr
from chat.waku.enr.waku_fields import Capability, RelayShards, WakuPeer, node_enr
from chat.waku.peer_exchange.core import EnrBook, ServicePeerPool, judge_answer
from chat.waku.peer_exchange.wire import (
    MAX_PEERS_PER_ANSWER,
    PeerExchangeRequest,
    PeerExchangeResponse,
    PxStatus,
    PxWireError,
    max_response_frame,
)
from chat.waku.proto import peer_exchange_pb2

SERVICES = Capability.RELAY | Capability.FILTER | Capability.LIGHTPUSH


def peer(n: int, seq: int = 1, cluster: int = 42, addrs: list[str] | None = None) -> WakuPeer:
    listen = [Multiaddr(a) for a in (addrs or [f"/ip4/10.0.0.{n}/tcp/60000"])]
    record = node_enr(bytes([n]) * 32, seq, listen, SERVICES, RelayShards(cluster, (0,)))
    return WakuPeer.from_enr(record)


def key(p: WakuPeer) -> str:
    return p.peer_id.to_base58()


# -- wire ---------------------------------------------------------------------------------


def test_a_response_carries_the_query_nwaku_requires_and_its_status() -> None:
    records = (peer(1).enr.raw, peer(2).enr.raw)
    data = PeerExchangeResponse(records, PxStatus.SUCCESS).encode()
    rpc = peer_exchange_pb2.PeerExchangeRPC.FromString(data)
    assert rpc.HasField("query") and rpc.query.HasField("num_peers")
    assert data.startswith(bytes.fromhex("0a020800"))
    decoded = PeerExchangeResponse.decode(data)
    assert decoded.records == records and decoded.status_code == 200 and decoded.succeeded


def test_requests_round_trip_and_a_request_without_query_is_refused() -> None:
    assert PeerExchangeRequest.decode(PeerExchangeRequest(60).encode()).num_peers == 60
    with pytest.raises(PxWireError, match="no query"):
        PeerExchangeRequest.decode(b"")
    with pytest.raises(PxWireError):
        PeerExchangeRequest.decode(b"\x0a\x05\x08")


def test_a_response_without_status_succeeds_only_with_records() -> None:
    # What js-waku 0.0.36 and go-waku servers send: no status fields.
    bare = peer_exchange_pb2.PeerExchangeRPC()
    bare.response.SetInParent()
    assert not PeerExchangeResponse.decode(bare.SerializeToString()).succeeded
    bare.response.peer_infos.add(enr=peer(1).enr.raw)
    decoded = PeerExchangeResponse.decode(bare.SerializeToString())
    assert decoded.status_code is None and decoded.succeeded


def test_a_response_with_more_records_than_asked_is_refused() -> None:
    data = PeerExchangeResponse(tuple(peer(n).enr.raw for n in range(1, 5))).encode()
    assert len(PeerExchangeResponse.decode(data, max_records=4).records) == 4
    with pytest.raises(PxWireError, match="more than 3"):
        PeerExchangeResponse.decode(data, max_records=3)


def test_the_frame_limit_fits_a_full_answer_of_maximal_records() -> None:
    biggest = PeerExchangeResponse((bytes(MAX_RECORD_SIZE),) * MAX_PEERS_PER_ANSWER, 200, "x" * 200)
    assert len(biggest.encode()) <= max_response_frame(MAX_PEERS_PER_ANSWER)


# -- the server's book ------------------------------------------------------------------


def test_the_book_hands_out_our_record_first_then_live_peers_never_the_requester() -> None:
    book = EnrBook()
    own, alive, gone, requester = peer(1), peer(2), peer(3), peer(4)
    book.set_own(own)
    for p in (alive, gone, requester):
        book.connected(key(p), 0.0)
        assert book.learn(p, 0.0)
    book.disconnected(key(gone), 10.0)
    answer = book.answer(10, key(requester), 100.0, random.Random(1))
    assert answer[0] == own.enr.raw
    assert set(answer) == {own.enr.raw, alive.enr.raw, gone.enr.raw}
    # Past the alive window the disconnected peer's record is no longer handed out.
    later = book.answer(10, key(requester), 10.0 + book.alive_window + 1, random.Random(1))
    assert set(later) == {own.enr.raw, alive.enr.raw}
    assert book.answer(1, key(requester), 0.0, random.Random(1)) == [own.enr.raw]


def test_a_record_of_a_peer_never_seen_alive_is_kept_but_not_handed_out() -> None:
    book = EnrBook()
    heard_of = peer(5)
    assert book.learn(heard_of, 0.0)
    assert book.answer(10, "someone", 0.0, random.Random(0)) == []
    book.connected(key(heard_of), 5.0)
    assert book.answer(10, "someone", 5.0, random.Random(0)) == [heard_of.enr.raw]


def test_answers_are_capped_and_sampled() -> None:
    book = EnrBook()
    for n in range(1, 80):
        p = peer(n)
        book.connected(key(p), 0.0)
        book.learn(p, 0.0)
    first = book.answer(1000, "x", 0.0, random.Random(1))
    assert len(first) == MAX_PEERS_PER_ANSWER
    assert first != book.answer(1000, "x", 0.0, random.Random(2))


def test_a_newer_record_replaces_an_older_one_and_the_book_is_bounded() -> None:
    book = EnrBook(capacity=3)
    old, new = peer(1, seq=1), peer(1, seq=2)
    book.connected(key(old), 0.0)
    assert book.learn(old, 0.0) and not book.learn(new, 0.0)
    assert book.answer(5, "x", 0.0, random.Random(0)) == [new.enr.raw]
    assert not book.learn(peer(1, seq=1), 0.0)
    assert book.answer(5, "x", 0.0, random.Random(0)) == [new.enr.raw]
    for n in range(2, 7):
        book.learn(peer(n), float(n))
    assert len(book) == 3 and book.knows(key(old))  # a connected peer is never evicted


# -- the client's checks ------------------------------------------------------------------


def test_judge_keeps_good_records_and_counts_every_bad_one() -> None:
    good, other_cluster, own = peer(1), peer(2, cluster=7), peer(3)
    tampered = bytearray(peer(4).enr.raw)
    tampered[-1] ^= 1
    no_address = WakuPeer.from_enr(
        Enr.sign(bytes([5]) * 32, 1, {"waku2": b"\x01", "udp": b"\x23\x28"})
    )
    onion_only = peer(
        6, addrs=["/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234"]
    )
    judged = judge_answer(
        [
            good.enr.raw,
            good.enr.raw,
            other_cluster.enr.raw,
            own.enr.raw,
            bytes(tampered),
            bytes(MAX_RECORD_SIZE + 1),
            b"\x01\x02",
            no_address.enr.raw,
            onion_only.enr.raw,
        ],
        own_peer_id=key(own),
        cluster_id=42,
    )
    assert [key(p) for p in judged.peers] == [key(good)]
    assert judged.dropped == {
        "duplicate": 1,
        "other_cluster": 1,
        "ourselves": 1,
        "bad_signature": 1,
        "too_large": 1,
        "malformed": 1,
        "no_address": 2,
    }


# -- the client's failover pool -------------------------------------------------------------


def test_the_pool_fails_over_and_brings_a_node_back_after_its_cool_down() -> None:
    pool = ServicePeerPool(size=2, cool_down=60.0)
    first, second, third = peer(1), peer(2), peer(3)
    assert pool.add([first, second, third]) == 2
    assert pool.pick(0.0) == first
    pool.failed(key(first), 0.0)
    assert pool.pick(1.0) == second
    pool.failed(key(second), 2.0)
    assert pool.pick(3.0) is None
    assert pool.pick(60.0) == first
    pool.succeeded(key(second))
    assert pool.usable(3.0) == [second]
    assert pool.failovers == 2
    pool.forget(key(first))
    assert pool.add([third]) == 1 and len(pool) == 2


def test_the_pool_picks_by_capability() -> None:
    pool = ServicePeerPool()
    relay_only = WakuPeer.from_enr(
        node_enr(b"\x09" * 32, 1, [Multiaddr("/ip4/10.0.0.9/tcp/1")], Capability.RELAY, None)
    )
    pool.add([relay_only, peer(1)])
    assert pool.pick(0.0, Capability.FILTER) == peer(1)
    assert pool.pick(0.0, Capability.STORE) is None


def test_a_record_learned_by_peer_exchange_becomes_a_dial_candidate_with_its_services() -> None:
    from chat.waku.connectivity import Connectivity, ConnectivityOptions
    from chat.waku.node import Node, NodeConfig
    from chat.waku.peers import Service

    connectivity = Connectivity(
        Node(NodeConfig([Multiaddr("/ip4/127.0.0.1/tcp/0")])), ConnectivityOptions()
    )
    found = peer(3, addrs=["/ip4/10.0.0.3/tcp/60000", "/ip4/10.0.0.3/tcp/8000/ws"])
    connectivity.found_by_peer_exchange(found)
    core = connectivity.peers.core
    assert core.knows(key(found))
    assert core.services_of(key(found)) == {Service.RELAY, Service.FILTER, Service.LIGHTPUSH}
    assert core.known_peers(0.0) == 1
