"""The helpers every protobuf codec shares: parse or raise the codec's own error, optional and
required fields."""

from __future__ import annotations

import pytest

from chat.waku.proto import filter_pb2, store_pb2
from chat.waku.protowire import optional, parse, require


class CodecError(ValueError):
    """Stands for a codec's documented error type."""


def test_parse_returns_the_message() -> None:
    data = store_pb2.StoreQueryRequest(request_id="r1").SerializeToString()
    assert parse(store_pb2.StoreQueryRequest, data, CodecError).request_id == "r1"


def test_bad_bytes_raise_the_codecs_own_error_naming_the_message() -> None:
    truncated = b"\x0a\x05ab"  # field 1, length 5, only 2 bytes follow
    with pytest.raises(CodecError, match=r"^not a StoreQueryRequest: "):
        parse(store_pb2.StoreQueryRequest, truncated, CodecError)
    with pytest.raises(CodecError, match=r"^not an SDS frame: "):
        parse(store_pb2.StoreQueryRequest, truncated, CodecError, "an SDS frame")


def test_optional_tells_absent_from_the_default_value() -> None:
    absent = store_pb2.StoreQueryRequest(request_id="r1")
    zero = store_pb2.StoreQueryRequest(request_id="r1", time_start=0, pubsub_topic="")
    assert optional(absent, "time_start") is None
    assert optional(absent, "pubsub_topic") is None
    assert optional(zero, "time_start") == 0
    assert optional(zero, "pubsub_topic") == ""


def test_require_refuses_a_message_without_the_field() -> None:
    require(filter_pb2.MessagePush(pubsub_topic=""), "pubsub_topic", CodecError)
    with pytest.raises(CodecError, match=r"^MessagePush has no pubsub_topic$"):
        require(filter_pb2.MessagePush(), "pubsub_topic", CodecError)
