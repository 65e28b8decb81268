"""Store v3 messages and their codec (reference: waku-wire.md §6).

Encoding always writes what nwaku requires on the wire, even when it holds the default:
request_id (1) in requests; request_id (1), status_code (10) and status_desc (11) in
responses; message_hash (1) in every key-value. Decoding is lenient (absent = default,
unknown fields skipped), except that a request without request_id is refused, as nwaku does.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.waku.framing import encode_uvarint
from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, MessageError, WakuMessage
from chat.waku.proto import store_pb2
from chat.waku.protowire import optional, parse, require

PROTOCOL_ID = "/vac/waku/store-query/3.0.0"

# A request carries topics and hashes only: 10 topics or a few hundred hashes fit easily;
# 1000 content topics (about 40 KB) still arrive whole so they can be answered properly.
MAX_REQUEST_SIZE = 256 * 1024
# A full page of the largest messages, plus protobuf overhead per entry.
MAX_RESPONSE_SIZE = 100 * (DEFAULT_MAX_MESSAGE_SIZE + 1024) + 64 * 1024


class StoreWireError(ValueError):
    """Bytes that are not a valid store message."""


@dataclass(frozen=True, slots=True)
class MessageKeyValue:
    message_hash: bytes
    message: WakuMessage | None = None
    pubsub_topic: str | None = None


@dataclass(frozen=True, slots=True)
class StoreQueryRequest:
    request_id: str
    include_data: bool = False
    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()
    time_start: int | None = None
    time_end: int | None = None
    message_hashes: tuple[bytes, ...] = ()
    pagination_cursor: bytes | None = None
    pagination_forward: bool = False
    """False (the default on the wire) walks backward: newest pages first."""
    pagination_limit: int | None = None

    def encode(self) -> bytes:
        pb = store_pb2.StoreQueryRequest(
            request_id=self.request_id,
            include_data=self.include_data,
            content_topics=list(self.content_topics),
            message_hashes=list(self.message_hashes),
            pagination_forward=self.pagination_forward,
        )
        if self.pubsub_topic is not None:
            pb.pubsub_topic = self.pubsub_topic
        if self.time_start is not None:
            pb.time_start = self.time_start
        if self.time_end is not None:
            pb.time_end = self.time_end
        if self.pagination_cursor is not None:
            pb.pagination_cursor = self.pagination_cursor
        if self.pagination_limit is not None:
            pb.pagination_limit = self.pagination_limit
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> StoreQueryRequest:
        if len(data) > MAX_REQUEST_SIZE:
            raise StoreWireError(f"request of {len(data)} bytes is over {MAX_REQUEST_SIZE}")
        pb = parse(store_pb2.StoreQueryRequest, data, StoreWireError)
        require(pb, "request_id", StoreWireError)
        return cls(
            request_id=pb.request_id,
            include_data=pb.include_data,
            pubsub_topic=optional(pb, "pubsub_topic"),
            content_topics=tuple(pb.content_topics),
            time_start=optional(pb, "time_start"),
            time_end=optional(pb, "time_end"),
            message_hashes=tuple(pb.message_hashes),
            pagination_cursor=optional(pb, "pagination_cursor"),
            pagination_forward=pb.pagination_forward,
            pagination_limit=optional(pb, "pagination_limit"),
        )


@dataclass(frozen=True, slots=True)
class StoreQueryResponse:
    request_id: str
    status_code: int
    status_desc: str
    messages: tuple[MessageKeyValue, ...] = ()
    pagination_cursor: bytes | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def encode(self) -> bytes:
        pb = store_pb2.StoreQueryResponse(
            request_id=self.request_id,
            status_code=self.status_code,
            status_desc=self.status_desc,
        )
        for kv in self.messages:
            entry = pb.messages.add(message_hash=kv.message_hash)
            if kv.message is not None:
                entry.message.MergeFromString(kv.message.encode())
                entry.pubsub_topic = kv.pubsub_topic or ""
        if self.pagination_cursor is not None:
            pb.pagination_cursor = self.pagination_cursor
        return pb.SerializeToString()

    @classmethod
    def decode(
        cls, data: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> StoreQueryResponse:
        pb = parse(store_pb2.StoreQueryResponse, data, StoreWireError)
        messages: list[MessageKeyValue] = []
        for entry in pb.messages:
            message = None
            if entry.HasField("message"):
                try:
                    message = WakuMessage.decode(
                        entry.message.SerializeToString(), max_size=max_message_size
                    )
                except MessageError as exc:
                    raise StoreWireError(f"bad message in response: {exc}") from None
            messages.append(
                MessageKeyValue(
                    message_hash=entry.message_hash,
                    message=message,
                    pubsub_topic=optional(entry, "pubsub_topic"),
                )
            )
        return cls(
            request_id=pb.request_id,
            # Absent status is not success (js-waku and go-waku read it the same way).
            status_code=pb.status_code,
            status_desc=pb.status_desc,
            messages=tuple(messages),
            pagination_cursor=optional(pb, "pagination_cursor"),
        )


# -- a response built from stored message bytes ---------------------------------------------
# A store node keeps every WakuMessage as the bytes it received. Decoding them into objects
# and encoding them again only to send them costs CPU and several copies of every page;
# this writes the same protobuf fields around the stored bytes instead (one copy, the result).


def _tag(field_number: int, wire_type: int) -> bytes:
    return encode_uvarint(field_number << 3 | wire_type)


def _length_delimited(field_number: int, data: bytes) -> list[bytes]:
    return [_tag(field_number, 2), encode_uvarint(len(data)), data]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One WakuMessageKeyValue whose message is the stored encoding (None: hash only)."""

    message_hash: bytes
    message: bytes | None = None
    pubsub_topic: str | None = None


def encode_stored_response(
    request_id: str,
    status_code: int,
    status_desc: str,
    entries: list[StoredEntry],
    pagination_cursor: bytes | None = None,
) -> bytes:
    """The StoreQueryResponse StoreQueryResponse.encode would write for the decoded messages,
    with each message's stored bytes embedded as they are (same fields, same presence)."""
    parts = [
        *_length_delimited(1, request_id.encode()),
        _tag(10, 0),
        encode_uvarint(status_code),
        *_length_delimited(11, status_desc.encode()),
    ]
    for entry in entries:
        inner = _length_delimited(1, entry.message_hash)
        if entry.message is not None:
            inner += _length_delimited(2, entry.message)
            inner += _length_delimited(3, (entry.pubsub_topic or "").encode())
        parts += [_tag(20, 2), encode_uvarint(sum(len(p) for p in inner)), *inner]
    if pagination_cursor is not None:
        parts += _length_delimited(51, pagination_cursor)
    return b"".join(parts)
