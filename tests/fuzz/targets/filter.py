"""Filter v2 (chat/waku/filter/wire.py, subscriptions.py): subscribe requests as the server
decodes and applies them to its subscription table, and the responses and pushes a client
decodes."""

from __future__ import annotations

from collections.abc import Iterable

from chat.waku.filter.server_core import MAX_CRITERIA_PER_PEER, FilterSubscriptions
from chat.waku.filter.wire import (
    FilterWireError,
    MessagePush,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeType,
)
from fuzz.contract import Target, check, join_records, records, round_trip
from fuzz.targets.message import OPEN_TOPIC, sample_messages

PEERS = ("peer-a", "peer-b")
TOPICS = ("/chinwag/1/dm-abc/proto", "/app/1/name/proto", "/a/1/b/c")


def fuzz_filter_request(data: bytes) -> None:
    """Each record: one byte choosing the peer and time step, then a subscribe request."""
    table = FilterSubscriptions()
    now = 0.0
    for record in records(data):
        if not record:
            continue
        now += record[0] >> 1
        try:
            request = SubscribeRequest.decode(record[1:])
        except FilterWireError:
            continue
        round_trip(request, SubscribeRequest.decode(request.encode()))
        response = table.handle(PEERS[record[0] % 2], request, now)
        round_trip(response, SubscribeResponse.decode(response.encode()))
        for message in sample_messages():
            table.subscribers_for(OPEN_TOPIC, message, now)
    for peer in PEERS:
        count = len(table.criteria_of(peer))
        check(count <= MAX_CRITERIA_PER_PEER, f"{peer} holds {count} criteria")


def _request_seeds() -> Iterable[bytes]:
    subscribe = SubscribeRequest("s1", SubscribeType.SUBSCRIBE, OPEN_TOPIC, TOPICS).encode()
    ping = SubscribeRequest("p1", SubscribeType.SUBSCRIBER_PING).encode()
    unsubscribe = SubscribeRequest("u1", SubscribeType.UNSUBSCRIBE, OPEN_TOPIC, TOPICS[:1])
    everything = SubscribeRequest("a1", SubscribeType.UNSUBSCRIBE_ALL).encode()
    yield join_records([b"\x00" + subscribe, b"\x02" + ping, b"\x04" + unsubscribe.encode()])
    yield join_records([b"\x01" + subscribe, b"\xff" + ping, b"\x00" + everything])
    yield join_records([b"\x00" + SubscribeRequest("x", 9, OPEN_TOPIC, TOPICS).encode()])


def fuzz_filter_response(data: bytes) -> None:
    try:
        response = SubscribeResponse.decode(data)
    except FilterWireError:
        return
    round_trip(response, SubscribeResponse.decode(response.encode()))


def fuzz_filter_push(data: bytes) -> None:
    try:
        push = MessagePush.decode(data)
    except FilterWireError:
        return
    round_trip(push, MessagePush.decode(push.encode()))


TARGETS = (
    Target(
        name="filter_request",
        decoder="chat.waku.filter.wire.SubscribeRequest.decode, then "
        "chat.waku.filter.server_core.FilterSubscriptions.handle",
        contract="FilterWireError only; handle never raises and answers with a response that "
        "round-trips; criteria per peer stay bounded",
        fuzz=fuzz_filter_request,
        seeds=_request_seeds,
        tokens=(OPEN_TOPIC.encode(), *(t.encode() for t in TOPICS)),
    ),
    Target(
        name="filter_response",
        decoder="chat.waku.filter.wire.SubscribeResponse.decode",
        contract="FilterWireError only; decode(encode(r)) == r",
        fuzz=fuzz_filter_response,
        seeds=lambda: [
            SubscribeResponse("s1", 200, "OK").encode(),
            SubscribeResponse("N/A", 429).encode(),
        ],
        max_len=1024,
    ),
    Target(
        name="filter_push",
        decoder="chat.waku.filter.wire.MessagePush.decode",
        contract="FilterWireError only; decode(encode(p)) == p",
        fuzz=fuzz_filter_push,
        seeds=lambda: [MessagePush(m, OPEN_TOPIC).encode() for m in sample_messages()],
    ),
)
