"""Node records (chat/waku/enr) and peer exchange (chat/waku/peer_exchange/wire.py, core.py):
the records a client gets from any peer, and the requests and answers on the wire."""

from __future__ import annotations

import random
from functools import cache

from multiaddr import Multiaddr

from chat.waku.enr.record import MAX_RECORD_SIZE, Enr, EnrError
from chat.waku.enr.waku_fields import Capability, RelayShards, WakuPeer, node_enr
from chat.waku.peer_exchange.core import EnrBook, judge_answer
from chat.waku.peer_exchange.wire import (
    MAX_PEERS_PER_ANSWER,
    PeerExchangeRequest,
    PeerExchangeResponse,
    PxWireError,
)
from fuzz.contract import Target, check, round_trip

EIP778 = (
    "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls"
    "8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1"
    "ZHCCdl8"
)


@cache
def sample_records() -> tuple[bytes, ...]:
    """Real records: the EIP-778 example, and ours with every Waku field."""
    ours = [
        node_enr(
            bytes([n]) * 32,
            n,
            [Multiaddr(f"/ip4/10.0.0.{n}/tcp/60000"), Multiaddr(f"/ip4/10.0.0.{n}/tcp/8000/ws")],
            Capability(n),
            RelayShards(42, tuple(range(n * 20))),
        ).raw
        for n in (1, 2, 4)
    ]
    return (Enr.from_text(EIP778).raw, *ours)


def fuzz_enr(data: bytes) -> None:
    try:
        peer = WakuPeer.decode(data)
    except EnrError:
        return
    check(len(peer.enr.raw) <= MAX_RECORD_SIZE, f"a record of {len(peer.enr.raw)} bytes")
    round_trip(peer, WakuPeer.from_text(peer.enr.text))
    suffix = f"/p2p/{peer.peer_id.to_base58()}"
    check(all(str(a).endswith(suffix) for a in peer.dial_addrs), "a dial address without /p2p")


def fuzz_peer_exchange(data: bytes) -> None:
    """The bytes as a request (what a server decodes) and as an answer (what a client
    decodes, checks and a server then keeps and hands out)."""
    try:
        request = PeerExchangeRequest.decode(data)
        round_trip(request, PeerExchangeRequest.decode(request.encode()))
    except PxWireError:
        pass
    try:
        response = PeerExchangeResponse.decode(data)
    except PxWireError:
        return
    round_trip(response, PeerExchangeResponse.decode(response.encode()))
    judged = judge_answer(response.records, cluster_id=42)
    check(len(judged.peers) + sum(judged.dropped.values()) == len(response.records), "lost")
    book = EnrBook()
    for peer in judged.peers:
        book.connected(peer.peer_id.to_base58(), 0.0)
        book.learn(peer, 0.0)
    answer = book.answer(MAX_PEERS_PER_ANSWER, "requester", 0.0, random.Random(0))
    check(len(answer) <= len(judged.peers), "the book handed out more than it learned")


TOKENS = (b"id", b"v4", b"secp256k1", b"ip", b"tcp", b"udp", b"ip6", b"multiaddrs", b"waku2")

TARGETS = (
    Target(
        name="enr",
        decoder="chat.waku.enr.waku_fields.WakuPeer.decode (Enr.decode: RLP, fields, signature)",
        contract="EnrError only; at most 300 bytes; text round trip; dial addresses end in /p2p",
        fuzz=fuzz_enr,
        seeds=sample_records,
        max_len=512,
        tokens=(*TOKENS, b"rs", b"rsv"),
    ),
    Target(
        name="peer_exchange",
        decoder="chat.waku.peer_exchange.wire.PeerExchangeRequest/Response.decode, then "
        "core.judge_answer and EnrBook",
        contract="PxWireError only; round trips; every record kept or counted as dropped",
        fuzz=fuzz_peer_exchange,
        seeds=lambda: [
            PeerExchangeRequest(60).encode(),
            PeerExchangeResponse(sample_records()).encode(),
            PeerExchangeResponse((), 429, "too many requests").encode(),
        ],
        max_len=4096,
        tokens=TOKENS,
    ),
)
