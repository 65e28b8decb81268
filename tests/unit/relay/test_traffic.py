"""Relay frames split by what they carry, for the bandwidth meter: every byte counted once,
under subscriptions, control or the published message's kind."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from chat.waku.bandwidth import BandwidthMeter, Line
from chat.waku.framing import encode_uvarint
from chat.waku.message import WakuMessage
from chat.waku.proto import rpc_pb2
from chat.waku.relay.traffic import RelayTraffic, published_frame_size
from chat.waku.relay.wire import ControlBatch, encode_publish_frame, encode_subscriptions

PUBSUB = "/waku/2/rs/42/0"
CHAT = "/chinwag/1/dm-abc/proto"


def _kinds(meter: BandwidthMeter) -> dict[str, Line]:
    return {line.name: line for line in meter.snapshot(1.0).kinds}


def _waku(content_topic: str, size: int) -> bytes:
    return WakuMessage(b"p" * size, content_topic, timestamp=1).encode()


def _meter() -> tuple[BandwidthMeter, RelayTraffic]:
    meter = BandwidthMeter(0.0)
    meter.kinds.set_topic(CHAT, "chat")
    return meter, RelayTraffic(meter)


def test_outbound_frames_are_counted_whole_under_their_kind() -> None:
    meter, traffic = _meter()
    publish = encode_publish_frame(PUBSUB.encode(), _waku(CHAT, 1000))
    unknown = encode_publish_frame(PUBSUB.encode(), _waku("/other/1/x/proto", 10))
    subscriptions = encode_subscriptions([(PUBSUB, True)])
    batch = ControlBatch()
    batch.grafts.append(PUBSUB)
    batch.ihave.append((PUBSUB, [b"i" * 32] * 3))
    [control] = batch.encode(1 << 20, 5000)
    for frame in (publish, publish, unknown, subscriptions, control):  # one frame, two peers
        traffic.sent(frame)
    kinds = _kinds(meter)
    assert (kinds["chat"].bytes_out, kinds["chat"].messages_out) == (2 * len(publish), 2)
    assert (kinds["message"].bytes_out, kinds["message"].messages_out) == (len(unknown), 1)
    assert kinds["subscriptions"].bytes_out == len(subscriptions)
    assert (kinds["control"].bytes_out, kinds["control"].messages_out) == (len(control), 1)
    assert sum(line.bytes_in for line in kinds.values()) == 0


def test_a_mixed_inbound_rpc_is_split_and_every_byte_counted_once() -> None:
    meter, traffic = _meter()
    rpc = rpc_pb2.RPC()
    rpc.subscriptions.add(subscribe=True, topicid=PUBSUB)
    for size in (500, 700):
        rpc.publish.add(data=_waku(CHAT, size), topic=PUBSUB)
    rpc.control.prune.add(topicID=PUBSUB, backoff=60)
    rpc.control.iwant.add(messageIDs=[b"w" * 32])
    frame = rpc.SerializeToString()
    traffic.received(frame)
    kinds = _kinds(meter)
    total = len(encode_uvarint(len(frame))) + len(frame)
    assert sum(line.bytes_in for line in kinds.values()) == total
    assert kinds["chat"].messages_in == 2 and kinds["chat"].bytes_in > 1200
    assert kinds["control"].messages_in == 1 and kinds["control"].bytes_in > 32
    assert kinds["subscriptions"].bytes_in > len(PUBSUB)


def test_a_sync_sent_on_a_chat_topic_counts_as_sync() -> None:
    meter, traffic = _meter()
    frame = encode_publish_frame(PUBSUB.encode(), _waku(CHAT, 100))
    with meter.kinds.sending("sync"):
        traffic.sent(frame)
    traffic.received(frame[len(encode_uvarint(len(frame) - 2)) :])  # theirs: chat, for now
    kinds = _kinds(meter)
    assert kinds["sync"].bytes_out == len(frame) and kinds["chat"].bytes_out == 0
    assert kinds["chat"].messages_in == 1


FRAMES = st.binary(max_size=300) | st.binary(max_size=60).map(lambda tail: b"\x12" + tail)
"""Any bytes, and bytes that start as a published message (the parts that scan deepest)."""


@given(FRAMES)
@example(b"\x12\x02\xff\xff")  # a published message whose inside does not scan
@example(b"\x12\x04\x12\x02\x0a\x09")  # its WakuMessage's payload runs past its end
def test_any_bytes_are_counted_exactly_once_whatever_they_hold(frame: bytes) -> None:
    meter, traffic = _meter()
    traffic.received(frame)
    counted = sum(line.bytes_in for line in _kinds(meter).values())
    assert counted == len(encode_uvarint(len(frame))) + len(frame)
    framed = encode_uvarint(len(frame)) + frame
    traffic.sent(framed)
    assert sum(line.bytes_out for line in _kinds(meter).values()) == len(framed)


def test_kinds_never_count_into_the_other_direction() -> None:
    meter, traffic = _meter()
    frame = encode_publish_frame(PUBSUB.encode(), _waku(CHAT, 10))
    traffic.sent(frame)
    snapshot = meter.snapshot(1.0)
    assert all(line.bytes_in == 0 for line in snapshot.kinds)
    assert sum(line.bytes_out for line in snapshot.kinds) == len(frame)


def test_a_published_frame_size_is_the_frame_relay_sends() -> None:
    for size in (0, 100, 127, 128, 20_000, 200_000):
        data = _waku(CHAT, size)
        frame = encode_publish_frame(PUBSUB.encode(), data)
        assert published_frame_size(PUBSUB, len(data)) == len(frame)


@given(
    payload=st.integers(0, 300_000),
    topic=st.text(min_size=1, max_size=200),
    meta=st.binary(max_size=64),
)
def test_a_lone_message_is_classified_alike_by_the_quick_and_the_general_scan(
    payload: int, topic: str, meta: bytes
) -> None:
    meter = BandwidthMeter(0.0)
    meter.kinds.set_topic(topic, "contact_request")
    data = WakuMessage(b"p" * payload, topic, timestamp=7, meta=meta).encode()
    frame = encode_publish_frame(PUBSUB.encode(), data)
    rpc = rpc_pb2.RPC()
    rpc.publish.add(data=data, topic=PUBSUB)
    rpc.subscriptions.add(subscribe=True, topicid=PUBSUB)  # two parts: the general scan
    mixed = rpc.SerializeToString()
    traffic = RelayTraffic(meter)
    traffic.sent(frame)
    traffic.received(mixed)
    kinds = _kinds(meter)
    assert kinds["contact_request"].bytes_out == len(frame)
    assert kinds["contact_request"].messages_out == kinds["contact_request"].messages_in == 1
    assert kinds["message"].bytes_out == kinds["message"].bytes_in == 0
