"""Filter v2 (12/WAKU2-FILTER) messages and their codec.

Encoders always write the fields nwaku requires (request id, status code, the push's pubsub
topic) even when they hold a default. Decoders are lenient the proto3 way, except where a
missing field makes the message meaningless (a push without its message or pubsub topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, MessageError, WakuMessage
from chat.waku.proto import filter_pb2
from chat.waku.protowire import optional, parse, require

SUBSCRIBE_PROTOCOL = "/vac/waku/filter-subscribe/2.0.0-beta1"
PUSH_PROTOCOL = "/vac/waku/filter-push/2.0.0-beta1"

MAX_FRAME_SIZE = 10 * DEFAULT_MAX_MESSAGE_SIZE + 64 * 1024
"""nwaku's read limit for subscribe requests and push frames: 1,601,536 bytes."""
MAX_RESPONSE_SIZE = 64 * 1024
"""nwaku's read limit for subscribe responses."""

RATE_LIMITED_REQUEST_ID = "N/A"


class FilterStatus(IntEnum):
    OK = 200
    BAD_RESPONSE = 300
    BAD_REQUEST = 400
    NOT_FOUND = 404
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503
    PEER_DIAL_FAILURE = 504


class SubscribeType(IntEnum):
    SUBSCRIBER_PING = 0
    SUBSCRIBE = 1
    UNSUBSCRIBE = 2
    UNSUBSCRIBE_ALL = 3


class FilterWireError(ValueError):
    """Bytes that are not a valid filter message."""


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    request_id: str
    kind: int
    """A SubscribeType value; kept as int so an unknown type can be answered with 400."""
    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()

    def encode(self) -> bytes:
        pb = filter_pb2.FilterSubscribeRequest(
            request_id=self.request_id,
            filter_subscribe_type=self.kind,  # type: ignore[arg-type]
            content_topics=self.content_topics,
        )
        if self.pubsub_topic is not None:
            pb.pubsub_topic = self.pubsub_topic
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> SubscribeRequest:
        pb = parse(filter_pb2.FilterSubscribeRequest, data, FilterWireError)
        return cls(
            request_id=pb.request_id,
            kind=int(pb.filter_subscribe_type),
            pubsub_topic=optional(pb, "pubsub_topic"),
            content_topics=tuple(pb.content_topics),
        )


@dataclass(frozen=True, slots=True)
class SubscribeResponse:
    request_id: str
    status_code: int
    status_desc: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == FilterStatus.OK

    def encode(self) -> bytes:
        pb = filter_pb2.FilterSubscribeResponse(
            request_id=self.request_id, status_code=self.status_code
        )
        if self.status_desc is not None:
            pb.status_desc = self.status_desc
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> SubscribeResponse:
        pb = parse(filter_pb2.FilterSubscribeResponse, data, FilterWireError)
        require(pb, "status_code", FilterWireError)
        return cls(
            request_id=pb.request_id,
            status_code=pb.status_code,
            status_desc=optional(pb, "status_desc"),
        )


@dataclass(frozen=True, slots=True)
class MessagePush:
    message: WakuMessage
    pubsub_topic: str

    def encode(self) -> bytes:
        return filter_pb2.MessagePush(
            waku_message=self.message.encode(), pubsub_topic=self.pubsub_topic
        ).SerializeToString()

    @classmethod
    def decode(
        cls, data: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> MessagePush:
        pb = parse(filter_pb2.MessagePush, data, FilterWireError)
        require(pb, "waku_message", FilterWireError)
        require(pb, "pubsub_topic", FilterWireError)
        try:
            message = WakuMessage.decode(pb.waku_message, max_size=max_message_size)
        except MessageError as exc:
            raise FilterWireError(f"MessagePush carries a bad message: {exc}") from None
        return cls(message=message, pubsub_topic=pb.pubsub_topic)
