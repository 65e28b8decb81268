"""WakuMessage (14/WAKU2-MESSAGE): encode, lenient decode, and the deterministic hash.

Encoding always writes payload (1) and content_topic (2), which nwaku requires on the wire
even when empty; the optional fields are written only when they hold a value. Decoding is
lenient the proto3 way: absent fields take their defaults and unknown fields are skipped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from chat.waku.proto import message_pb2
from chat.waku.protowire import parse

DEFAULT_MAX_MESSAGE_SIZE = 150 * 1024
"""nwaku's and The Waku Network's limit for one encoded WakuMessage (153,600 bytes)."""
MAX_META_SIZE = 64


class MessageError(ValueError):
    """A WakuMessage that cannot be decoded or must not be sent."""


class MessageTooLarge(MessageError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


def now_ns() -> int:
    """Wall-clock time in Unix nanoseconds, the unit of WakuMessage.timestamp."""
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class WakuMessage:
    payload: bytes
    content_topic: str
    version: int = 0
    timestamp: int = 0
    """Unix nanoseconds; 0 means absent (never publish that: hashes diverge across clients)."""
    meta: bytes = b""
    rate_limit_proof: bytes = b""
    ephemeral: bool = False

    def encode(self) -> bytes:
        if len(self.meta) > MAX_META_SIZE:
            raise MessageError(f"meta is {len(self.meta)} bytes; at most {MAX_META_SIZE} allowed")
        pb = message_pb2.WakuMessage(payload=self.payload, content_topic=self.content_topic)
        if self.version:
            pb.version = self.version
        if self.timestamp:
            pb.timestamp = self.timestamp
        if self.meta:
            pb.meta = self.meta
        if self.rate_limit_proof:
            pb.rate_limit_proof = self.rate_limit_proof
        if self.ephemeral:
            pb.ephemeral = True
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> WakuMessage:
        if len(data) > max_size:
            raise MessageTooLarge(len(data), max_size)
        pb = parse(message_pb2.WakuMessage, data, MessageError)
        if len(pb.meta) > MAX_META_SIZE:
            raise MessageError(f"meta is {len(pb.meta)} bytes; at most {MAX_META_SIZE} allowed")
        return cls(
            payload=pb.payload,
            content_topic=pb.content_topic,
            version=pb.version,
            timestamp=pb.timestamp,
            meta=pb.meta,
            rate_limit_proof=pb.rate_limit_proof,
            ephemeral=pb.ephemeral,
        )

    def hash(self, pubsub_topic: str) -> bytes:
        return message_hash(pubsub_topic, self)


def message_hash(pubsub_topic: str, msg: WakuMessage) -> bytes:
    """The deterministic message hash used by store, filter dedup and our delivery trace.

    SHA-256 over pubsub topic, payload, content topic, meta and the timestamp as 8 bytes
    big-endian. An absent timestamp contributes 8 zero bytes, as in nwaku and go-waku
    (js-waku omits them, so never send timestamp 0).
    """
    h = hashlib.sha256()
    h.update(pubsub_topic.encode())
    h.update(msg.payload)
    h.update(msg.content_topic.encode())
    h.update(msg.meta)
    h.update((msg.timestamp & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big"))
    return h.digest()
