"""Store v3 codec: nwaku-required fields always on the wire, lenient decoding."""

from __future__ import annotations

import pytest

from chat.waku.message import WakuMessage
from chat.waku.proto import store_pb2
from chat.waku.store.wire import (
    MAX_REQUEST_SIZE,
    MessageKeyValue,
    StoreQueryRequest,
    StoreQueryResponse,
    StoreWireError,
)


def test_request_round_trips_every_field() -> None:
    req = StoreQueryRequest(
        request_id="r1",
        include_data=True,
        pubsub_topic="/waku/2/rs/42/0",
        content_topics=("/a/1/b/proto", "/a/1/c/proto"),
        time_start=-5,
        time_end=1_700_000_000_000_000_000,
        pagination_cursor=b"\x01" * 32,
        pagination_forward=True,
        pagination_limit=10**9,
    )
    assert StoreQueryRequest.decode(req.encode()) == req


def test_request_always_writes_request_id_even_when_empty() -> None:
    raw = StoreQueryRequest(request_id="").encode()
    assert raw.startswith(b"\x0a\x00")
    assert StoreQueryRequest.decode(raw).request_id == ""


def test_request_without_request_id_is_refused() -> None:
    raw = store_pb2.StoreQueryRequest(include_data=True).SerializeToString()
    with pytest.raises(StoreWireError, match="request_id"):
        StoreQueryRequest.decode(raw)


def test_request_decode_is_lenient_about_absent_fields_and_unknown_ones() -> None:
    # request_id "x", then unknown field 99 (varint 7).
    raw = b"\x0a\x01x" + b"\x98\x06\x07"
    req = StoreQueryRequest.decode(raw)
    assert req == StoreQueryRequest(request_id="x")
    assert req.pubsub_topic is None and req.pagination_limit is None


def test_garbage_and_oversized_requests_are_typed_errors() -> None:
    with pytest.raises(StoreWireError):
        StoreQueryRequest.decode(b"\xff\xff\xff")
    with pytest.raises(StoreWireError):
        StoreQueryRequest.decode(b"\x0a\x01x" + bytes(MAX_REQUEST_SIZE))


def test_response_writes_request_id_status_code_and_desc_even_when_default() -> None:
    raw = StoreQueryResponse(request_id="", status_code=0, status_desc="").encode()
    # field 1 (len 0), field 10 (varint 0), field 11 (len 0)
    assert raw == b"\x0a\x00\x50\x00\x5a\x00"


def test_response_round_trips_messages_with_and_without_data() -> None:
    msg = WakuMessage(payload=b"hi", content_topic="/a/1/b/proto", timestamp=123)
    resp = StoreQueryResponse(
        request_id="r",
        status_code=200,
        status_desc="OK",
        messages=(
            MessageKeyValue(message_hash=b"\x01" * 32),
            MessageKeyValue(message_hash=b"\x02" * 32, message=msg, pubsub_topic="/waku/2/rs/42/0"),
        ),
        pagination_cursor=b"\x02" * 32,
    )
    decoded = StoreQueryResponse.decode(resp.encode())
    assert decoded == resp
    assert decoded.ok


def test_hash_only_entry_still_carries_message_hash_field() -> None:
    raw = StoreQueryResponse(
        request_id="r",
        status_code=200,
        status_desc="OK",
        messages=(MessageKeyValue(message_hash=b""),),
    ).encode()
    pb = store_pb2.StoreQueryResponse.FromString(raw)
    assert pb.messages[0].HasField("message_hash")


def test_response_without_status_is_not_ok() -> None:
    assert not StoreQueryResponse.decode(b"").ok
