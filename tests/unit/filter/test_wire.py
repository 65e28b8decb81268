"""Filter v2 codec: fields nwaku requires are always on the wire; decoders are total."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.filter.wire import (
    FilterWireError,
    MessagePush,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeType,
)
from chat.waku.message import WakuMessage
from chat.waku.proto import filter_pb2

MSG = WakuMessage(payload=b"hello", content_topic="/app/1/chat/proto", timestamp=1_700_000_000)


def test_ping_request_writes_request_id_and_type_even_when_default() -> None:
    data = SubscribeRequest("", SubscribeType.SUBSCRIBER_PING).encode()
    assert data == bytes.fromhex("0a001000")


def test_request_round_trip() -> None:
    request = SubscribeRequest("abc", SubscribeType.SUBSCRIBE, "/waku/2/rs/42/0", ("/a/1/b/c",))
    assert SubscribeRequest.decode(request.encode()) == request


def test_absent_type_decodes_as_ping_and_unknown_type_is_kept() -> None:
    assert SubscribeRequest.decode(b"\x0a\x01x").kind == SubscribeType.SUBSCRIBER_PING
    assert SubscribeRequest.decode(b"\x0a\x01x\x10\x09").kind == 9


def test_response_writes_request_id_and_status_code_even_when_empty() -> None:
    data = SubscribeResponse("", 0).encode()
    pb = filter_pb2.FilterSubscribeResponse.FromString(data)
    assert pb.HasField("request_id") and pb.HasField("status_code")
    assert SubscribeResponse.decode(data) == SubscribeResponse("", 0)


def test_response_without_status_code_is_rejected() -> None:
    with pytest.raises(FilterWireError):
        SubscribeResponse.decode(b"\x0a\x01x")


def test_push_always_carries_pubsub_topic() -> None:
    data = MessagePush(MSG, "").encode()
    pb = filter_pb2.MessagePush.FromString(data)
    assert pb.HasField("pubsub_topic") and pb.HasField("waku_message")
    assert MessagePush.decode(data) == MessagePush(MSG, "")


def test_push_without_topic_or_message_is_rejected() -> None:
    only_message = filter_pb2.MessagePush(waku_message=MSG.encode()).SerializeToString()
    only_topic = filter_pb2.MessagePush(pubsub_topic="/waku/2/rs/42/0").SerializeToString()
    for data in (only_message, only_topic, b"\xff\xff"):
        with pytest.raises(FilterWireError):
            MessagePush.decode(data)


def test_push_with_oversized_or_bad_message_is_rejected() -> None:
    big = WakuMessage(payload=b"x" * 2000, content_topic="/a/1/b/c").encode()
    data = filter_pb2.MessagePush(waku_message=big, pubsub_topic="t").SerializeToString()
    with pytest.raises(FilterWireError):
        MessagePush.decode(data, max_message_size=1000)
    bad_meta = filter_pb2.MessagePush(waku_message=b"\x5a\x41" + b"m" * 65, pubsub_topic="t")
    with pytest.raises(FilterWireError):
        MessagePush.decode(bad_meta.SerializeToString())


@given(st.binary(max_size=512))
def test_decoders_never_raise_anything_but_their_error(data: bytes) -> None:
    for decode in (SubscribeRequest.decode, SubscribeResponse.decode, MessagePush.decode):
        try:
            decode(data)
        except FilterWireError:
            pass


@given(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.none(), st.text(max_size=40)),
    st.lists(st.text(max_size=30), max_size=20),
)
def test_request_round_trips(rid: str, kind: int, pubsub: str | None, topics: list[str]) -> None:
    request = SubscribeRequest(rid, kind, pubsub, tuple(topics))
    assert SubscribeRequest.decode(request.encode()) == request
