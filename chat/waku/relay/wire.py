"""The pubsub RPC on the wire: bounded decoding, StrictNoSign, message ids, and frame encoders.

Forwarded messages are encoded by hand once per message (never per peer) and carry `data`
byte for byte, so the SHA-256 message id is the same on every hop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from chat.waku.framing import encode_uvarint
from chat.waku.proto import rpc_pb2
from chat.waku.protowire import parse

RELAY_PROTOCOL = "/vac/waku/relay/2.0.0"
MESSAGE_ID_SIZE = 32

_TAG_PUBLISH = b"\x12"  # RPC.publish, field 2, length-delimited
_TAG_DATA = b"\x12"  # Message.data, field 2
_TAG_TOPIC = b"\x22"  # Message.topic, field 4


class RpcError(ValueError):
    """A frame that is not a well-formed pubsub RPC."""


def message_id(data: bytes) -> bytes:
    """Waku relay's message id: SHA-256 of the encoded WakuMessage, 32 raw bytes."""
    return hashlib.sha256(data).digest()


def decode_rpc(frame: bytes) -> rpc_pb2.RPC:
    return parse(rpc_pb2.RPC, frame, RpcError, "a pubsub RPC")


def signing_fields(msg: rpc_pb2.Message) -> list[str]:
    """The StrictNoSign violations of a message: names of the signing fields it carries."""
    return [name for name in ("from", "seqno", "signature", "key") if msg.HasField(name)]


def encode_publish_frame(topic: bytes, data: bytes) -> bytes:
    """A length-prefixed RPC carrying exactly one unsigned Message{data, topic}."""
    body = b"".join(
        (_TAG_DATA, encode_uvarint(len(data)), data, _TAG_TOPIC, encode_uvarint(len(topic)), topic)
    )
    rpc = b"".join((_TAG_PUBLISH, encode_uvarint(len(body)), body))
    return encode_uvarint(len(rpc)) + rpc


def frame(rpc: rpc_pb2.RPC) -> bytes:
    payload = rpc.SerializeToString()
    return encode_uvarint(len(payload)) + payload


def encode_subscriptions(changes: Iterable[tuple[str, bool]]) -> bytes:
    rpc = rpc_pb2.RPC()
    for topic, subscribe in changes:
        rpc.subscriptions.add(subscribe=subscribe, topicid=topic)
    return frame(rpc)


def _chunks(ids: Sequence[bytes], size: int) -> Iterable[Sequence[bytes]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class ControlBatch:
    """Control messages for one peer, collected during a heartbeat and flushed as frames."""

    __slots__ = ("grafts", "idontwant", "ihave", "iwant", "prunes")

    def __init__(self) -> None:
        self.grafts: list[str] = []
        self.prunes: list[tuple[str, int]] = []
        self.ihave: list[tuple[str, list[bytes]]] = []
        self.iwant: list[bytes] = []
        self.idontwant: list[bytes] = []

    def __bool__(self) -> bool:
        return bool(self.grafts or self.prunes or self.ihave or self.iwant or self.idontwant)

    def encode(self, max_frame_size: int, max_ids_per_entry: int) -> list[bytes]:
        """Frames whose payloads stay under `max_frame_size`; long id lists are split."""
        budget = max_frame_size * 9 // 10
        frames: list[bytes] = []
        rpc = rpc_pb2.RPC()
        size = 0

        def room(cost: int) -> rpc_pb2.ControlMessage:
            nonlocal rpc, size
            if size and size + cost > budget:
                frames.append(frame(rpc))
                rpc = rpc_pb2.RPC()
                size = 0
            size += cost
            return rpc.control

        for topic in self.grafts:
            room(len(topic) + 8).graft.add(topicID=topic)
        for topic, backoff in self.prunes:
            room(len(topic) + 16).prune.add(topicID=topic, backoff=backoff)
        for topic, ids in self.ihave:
            for chunk in _chunks(ids, max_ids_per_entry):
                cost = len(topic) + 8 + sum(len(i) + 2 for i in chunk)
                room(cost).ihave.add(topicID=topic, messageIDs=chunk)
        for chunk in _chunks(self.iwant, max_ids_per_entry):
            room(8 + sum(len(i) + 2 for i in chunk)).iwant.add(messageIDs=chunk)
        for chunk in _chunks(self.idontwant, max_ids_per_entry):
            room(8 + sum(len(i) + 2 for i in chunk)).idontwant.add(messageIDs=chunk)
        if size:
            frames.append(frame(rpc))
        return frames
