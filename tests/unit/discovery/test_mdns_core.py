"""mDNS: the DNS codec's bounds and the discovery core (announce, answer, filter by cluster)."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.discovery.mdns.core import Discovered, MdnsCore
from chat.waku.discovery.mdns.wire import (
    FLAG_RESPONSE,
    SERVICE_NAME,
    TYPE_PTR,
    DnsError,
    Message,
    Question,
    decode_message,
    encode_message,
    ptr_record,
    txt_record,
)

ALICE = "16Uiu2HAmCz7rRsmWvRr3cf1HmMEQDNYxMeuC8EsgHGdZTvXqSEzM"
BOB = "16Uiu2HAm4v86W3bmT1BiH6oSPzcsSr24iDQpSN5Qa992BCjjwgrD"


def core(peer: str, cluster: int = 42, **kwargs: bool) -> MdnsCore:
    return MdnsCore(peer, cluster, random.Random(1), **kwargs)


def test_a_query_is_answered_and_the_answer_names_the_peer() -> None:
    alice, bob = core(ALICE), core(BOB)
    answer, found = alice.receive(bob.query(), now=0.0)
    assert answer and not found
    response = alice.response(["/ip4/192.0.2.5/tcp/60000", f"/ip4/127.0.0.1/tcp/1/p2p/{ALICE}"])
    assert response is not None
    answer, found = bob.receive(response, now=0.0)
    assert not answer
    assert found == [Discovered(ALICE, ("/ip4/192.0.2.5/tcp/60000", "/ip4/127.0.0.1/tcp/1"), 42)]


def test_own_announcements_other_clusters_and_untagged_peers_are_dropped() -> None:
    alice = core(ALICE)
    response = alice.response(["/ip4/192.0.2.5/tcp/1"])
    assert response is not None
    assert alice.receive(response, 0.0) == (False, [])  # our own, looped back
    assert core(BOB, cluster=7).receive(response, 0.0) == (False, [])
    untagged = encode_message(
        Message(
            flags=FLAG_RESPONSE,
            answers=(ptr_record(SERVICE_NAME, "x." + SERVICE_NAME, 120),),
            additionals=(
                txt_record(
                    "x." + SERVICE_NAME, [b"dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/" + ALICE.encode()], 120
                ),
            ),
        )
    )
    assert core(BOB).receive(untagged, 0.0) == (False, [])
    assert core(BOB, accept_untagged=True).receive(untagged, 0.0)[1][0].peer_id == ALICE


def test_answers_are_rate_limited_and_other_questions_ignored() -> None:
    alice, bob = core(ALICE), core(BOB)
    assert alice.receive(bob.query(), 0.0)[0]
    assert not alice.receive(bob.query(), 0.1)[0]
    assert alice.receive(bob.query(), 0.3)[0]
    other = encode_message(Message(flags=0, questions=(Question("_http._tcp.local", TYPE_PTR),)))
    assert alice.receive(other, 5.0) == (False, [])


def test_query_schedule_is_a_burst_then_the_interval() -> None:
    alice = core(ALICE)
    times = [t / 10 for t in range(0, 400)]
    sent = [t for t in times if alice.queries_due(t)]
    assert sent == [0.0, 1.0, 3.0, 13.0, 23.0, 33.0]


def test_compressed_names_decode() -> None:
    header = struct.pack("!HHHHHH", 0, FLAG_RESPONSE, 1, 1, 0, 0)
    question = b"\x04_p2p\x04_udp\x05local\x00" + struct.pack("!HH", TYPE_PTR, 1)  # at 12
    ptr_data = b"\x03abc\xc0\x0c"  # "abc" then a pointer to the name at offset 12
    answer = b"\xc0\x0c" + struct.pack("!HHIH", TYPE_PTR, 1, 120, len(ptr_data)) + ptr_data
    message = decode_message(header + question + answer)
    assert message.answers[0].name == SERVICE_NAME
    assert message.answers[0].target == "abc._p2p._udp.local"


@pytest.mark.parametrize(
    "packet",
    [
        b"\x00" * 5,
        struct.pack("!HHHHHH", 0, 0, 200, 0, 0, 0),
        struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\xc0\x0c",  # a pointer to itself
        struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\x3f" + b"a" * 10,
        b"\x00" * 9001,
    ],
)
def test_malformed_packets_are_typed_errors(packet: bytes) -> None:
    with pytest.raises(DnsError):
        decode_message(packet)
    assert core(ALICE).receive(packet, 0.0) == (False, [])


@given(st.binary(max_size=600))
def test_any_bytes_give_a_message_or_a_dns_error(data: bytes) -> None:
    try:
        decode_message(data)
    except DnsError:
        pass


def test_round_trip() -> None:
    message = Message(
        flags=FLAG_RESPONSE,
        questions=(Question(SERVICE_NAME, TYPE_PTR),),
        answers=(ptr_record(SERVICE_NAME, "n." + SERVICE_NAME, 60),),
        additionals=(txt_record("n." + SERVICE_NAME, [b"a=b", b""], 60),),
    )
    decoded = decode_message(encode_message(message))
    assert decoded.questions == message.questions
    assert decoded.answers == message.answers
    assert decoded.additionals[0].txt_strings() == [b"a=b", b""]
