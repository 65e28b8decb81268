from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.framing import FrameDecoder
from chat.waku.proto import rpc_pb2
from chat.waku.relay.wire import (
    ControlBatch,
    RpcError,
    decode_rpc,
    encode_publish_frame,
    encode_subscriptions,
    message_id,
    signing_fields,
)

TOPIC = "/waku/2/rs/42/0"


def unframe(frame: bytes, limit: int = 1 << 20) -> bytes:
    (payload,) = FrameDecoder(limit).feed(frame)
    return payload


@given(data=st.binary(max_size=3000), topic=st.text(min_size=1, max_size=80))
def test_publish_frame_is_a_standard_rpc_with_data_verbatim(data: bytes, topic: str) -> None:
    rpc = decode_rpc(unframe(encode_publish_frame(topic.encode(), data)))
    (msg,) = rpc.publish
    assert msg.data == data
    assert msg.topic == topic
    assert signing_fields(msg) == []
    assert not rpc.subscriptions
    assert not rpc.HasField("control")


def test_publish_frame_matches_protobuf_encoding() -> None:
    rpc = rpc_pb2.RPC()
    rpc.publish.add(data=b"\x00\x01payload", topic=TOPIC)
    assert unframe(encode_publish_frame(TOPIC.encode(), b"\x00\x01payload")) == (
        rpc.SerializeToString()
    )


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand (all lengths here are < 128)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_field_numbers_match_the_pubsub_spec() -> None:
    sub = bytes([1 << 3, 1]) + field(2, b"t")  # SubOpts{subscribe=1, topicid=2}
    msg = field(1, b"a") + field(2, b"b") + field(3, b"c") + field(4, b"t")
    msg += field(5, b"d") + field(6, b"e")  # Message{from, data, seqno, topic, signature, key}
    control = field(1, field(1, b"t") + field(2, b"i" * 32))  # ihave{topicID, messageIDs}
    control += field(2, field(1, b"w" * 32))  # iwant{messageIDs}
    control += field(3, field(1, b"g"))  # graft{topicID}
    control += field(4, field(1, b"p") + bytes([3 << 3, 7]))  # prune{topicID, backoff=3}
    control += field(5, field(1, b"d" * 32))  # idontwant{messageIDs}
    rpc = decode_rpc(field(1, sub) + field(2, msg) + field(3, control))
    assert rpc.subscriptions[0].subscribe and rpc.subscriptions[0].topicid == "t"
    decoded = rpc.publish[0]
    assert (decoded.data, decoded.topic) == (b"b", "t")
    assert signing_fields(decoded) == ["from", "seqno", "signature", "key"]
    c = rpc.control
    assert c.ihave[0].topicID == "t" and c.ihave[0].messageIDs == [b"i" * 32]
    assert c.iwant[0].messageIDs == [b"w" * 32]
    assert c.graft[0].topicID == "g"
    assert (c.prune[0].topicID, c.prune[0].backoff) == ("p", 7)
    assert c.idontwant[0].messageIDs == [b"d" * 32]


def test_message_id_is_sha256_of_data() -> None:
    assert message_id(b"abc") == hashlib.sha256(b"abc").digest()


@given(st.binary(max_size=200))
def test_decode_rpc_raises_only_rpc_error(garbage: bytes) -> None:
    try:
        decode_rpc(garbage)
    except RpcError:
        pass


def test_decode_rpc_rejects_truncated() -> None:
    full = unframe(encode_publish_frame(TOPIC.encode(), b"x" * 100))
    with pytest.raises(RpcError):
        decode_rpc(full[:-5])


def test_subscription_frame() -> None:
    rpc = decode_rpc(unframe(encode_subscriptions([("a", True), ("b", False)])))
    assert [(s.topicid, s.subscribe) for s in rpc.subscriptions] == [("a", True), ("b", False)]
    # A False subscribe is still written on the wire (explicit presence).
    assert rpc.subscriptions[1].HasField("subscribe")


def test_control_batch_splits_long_id_lists_under_the_frame_limit() -> None:
    batch = ControlBatch()
    ids = [i.to_bytes(32, "big") for i in range(10_000)]
    batch.ihave.append((TOPIC, ids))
    batch.iwant.extend(ids[:3000])
    batch.grafts.append(TOPIC)
    batch.prunes.append(("other", 60))
    limit = 100_000
    frames = batch.encode(limit, 1024)
    assert len(frames) > 3
    seen_ihave: list[bytes] = []
    seen_iwant: list[bytes] = []
    grafts = prunes = 0
    for frame in frames:
        payload = unframe(frame, limit)
        rpc = decode_rpc(payload)
        for entry in rpc.control.ihave:
            assert entry.topicID == TOPIC
            seen_ihave.extend(entry.messageIDs)
        for entry in rpc.control.iwant:
            seen_iwant.extend(entry.messageIDs)
        grafts += len(rpc.control.graft)
        prunes += len(rpc.control.prune)
        if rpc.control.prune:
            assert rpc.control.prune[0].backoff == 60
    assert seen_ihave == ids
    assert seen_iwant == ids[:3000]
    assert (grafts, prunes) == (1, 1)


def test_empty_control_batch_encodes_nothing() -> None:
    assert not ControlBatch()
    assert ControlBatch().encode(1000, 10) == []
