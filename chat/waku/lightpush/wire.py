"""Light push v3 and legacy v2 messages and their codec.

Encoders always write what nwaku requires (v3: request id, message, status code; v2: request
id, pubsub topic, message, is_success even when false). Embedded WakuMessages are decoded by
WakuMessage.decode, so an oversized message is told apart from a malformed request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, MessageError, MessageTooLarge, WakuMessage
from chat.waku.proto import lightpush_pb2
from chat.waku.protowire import optional, parse, require

PROTOCOL_V3 = "/vac/waku/lightpush/3.0.0"
PROTOCOL_V2 = "/vac/waku/lightpush/2.0.0-beta1"

MAX_FRAME_SIZE = 10 * DEFAULT_MAX_MESSAGE_SIZE + 64 * 1024
"""nwaku's read limit for light push requests and responses: 1,601,536 bytes."""
UNKNOWN_REQUEST_ID = "N/A"


class LightPushStatus(IntEnum):
    SUCCESS = 200
    BAD_REQUEST = 400
    PAYLOAD_TOO_LARGE = 413
    INVALID_MESSAGE = 420
    UNSUPPORTED_PUBSUB_TOPIC = 421
    TOO_MANY_REQUESTS = 429
    INTERNAL_SERVER_ERROR = 500
    SERVICE_NOT_AVAILABLE = 503
    OUT_OF_RLN_PROOF = 504
    NO_PEERS_TO_RELAY = 505


class LightPushWireError(ValueError):
    """Bytes that are not a valid light push message."""


class OversizedMessage(LightPushWireError):
    """The request is well formed but its WakuMessage is over the size limit."""


def _decode_message(data: bytes, max_size: int) -> WakuMessage:
    try:
        return WakuMessage.decode(data, max_size=max_size)
    except MessageTooLarge as exc:
        raise OversizedMessage(str(exc)) from None
    except MessageError as exc:
        raise LightPushWireError(f"bad message: {exc}") from None


@dataclass(frozen=True, slots=True)
class PushRequest:
    """v3 LightPushRequest."""

    request_id: str
    message: WakuMessage
    pubsub_topic: str | None = None

    def encode(self) -> bytes:
        pb = lightpush_pb2.LightPushRequest(
            request_id=self.request_id, message=self.message.encode()
        )
        if self.pubsub_topic is not None:
            pb.pubsub_topic = self.pubsub_topic
        return pb.SerializeToString()

    @classmethod
    def decode(
        cls, data: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> PushRequest:
        pb = parse(lightpush_pb2.LightPushRequest, data, LightPushWireError)
        require(pb, "message", LightPushWireError)
        return cls(
            request_id=pb.request_id,
            message=_decode_message(pb.message, max_message_size),
            pubsub_topic=optional(pb, "pubsub_topic"),
        )


@dataclass(frozen=True, slots=True)
class PushResponse:
    """v3 LightPushResponse."""

    request_id: str
    status_code: int
    status_desc: str | None = None
    relay_peer_count: int | None = None

    @property
    def succeeded(self) -> bool:
        """nwaku clients count 200 without relay peers as a failure."""
        return self.status_code == LightPushStatus.SUCCESS and (self.relay_peer_count or 0) >= 1

    def encode(self) -> bytes:
        pb = lightpush_pb2.LightPushResponse(
            request_id=self.request_id, status_code=self.status_code
        )
        if self.status_desc is not None:
            pb.status_desc = self.status_desc
        if self.relay_peer_count is not None:
            pb.relay_peer_count = self.relay_peer_count
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> PushResponse:
        pb = parse(lightpush_pb2.LightPushResponse, data, LightPushWireError)
        require(pb, "status_code", LightPushWireError)
        return cls(
            request_id=pb.request_id,
            status_code=pb.status_code,
            status_desc=optional(pb, "status_desc"),
            relay_peer_count=optional(pb, "relay_peer_count"),
        )


@dataclass(frozen=True, slots=True)
class LegacyPushRequest:
    """v2 PushRPC carrying a PushRequest."""

    request_id: str
    pubsub_topic: str
    message: WakuMessage

    def encode(self) -> bytes:
        return lightpush_pb2.LegacyPushRpc(
            request_id=self.request_id,
            request=lightpush_pb2.LegacyPushRequest(
                pubsub_topic=self.pubsub_topic, message=self.message.encode()
            ),
        ).SerializeToString()

    @classmethod
    def decode(
        cls, data: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> LegacyPushRequest:
        pb = parse(lightpush_pb2.LegacyPushRpc, data, LightPushWireError, "a v2 PushRPC")
        require(pb, "request", LightPushWireError)
        require(pb.request, "message", LightPushWireError)
        require(pb.request, "pubsub_topic", LightPushWireError)
        return cls(
            request_id=pb.request_id,
            pubsub_topic=pb.request.pubsub_topic,
            message=_decode_message(pb.request.message, max_message_size),
        )


@dataclass(frozen=True, slots=True)
class LegacyPushResponse:
    """v2 PushRPC carrying a PushResponse."""

    request_id: str
    is_success: bool
    info: str | None = None

    def encode(self) -> bytes:
        response = lightpush_pb2.LegacyPushResponse(is_success=self.is_success)
        if self.info is not None:
            response.info = self.info
        return lightpush_pb2.LegacyPushRpc(
            request_id=self.request_id, response=response
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> LegacyPushResponse:
        pb = parse(lightpush_pb2.LegacyPushRpc, data, LightPushWireError, "a v2 PushRPC")
        require(pb, "response", LightPushWireError)
        return cls(
            request_id=pb.request_id,
            is_success=pb.response.is_success,
            info=optional(pb.response, "info"),
        )
