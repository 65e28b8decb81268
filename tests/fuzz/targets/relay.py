"""Relay RPCs (chat/waku/relay/codec.py) as the sans-IO gossipsub router handles them from a
peer: decode, subscriptions, published messages through the real validator pipeline
(protected shard included), and every control message, with heartbeats in between."""

from __future__ import annotations

import random
from collections.abc import Iterable

from chat.waku.bandwidth import BandwidthMeter
from chat.waku.framing import FrameDecoder, encode_uvarint
from chat.waku.relay.core import Router, Send
from chat.waku.relay.service import router_validator
from chat.waku.relay.traffic import RelayTraffic
from chat.waku.relay.wire import (
    ControlBatch,
    RpcError,
    decode_rpc,
    encode_publish_frame,
    encode_subscriptions,
    message_id,
)
from fuzz.contract import Target, check, join_records, records
from fuzz.targets.message import OPEN_TOPIC, PROTECTED_TOPIC, sample_messages, validator

PEERS = ("peer-a", "peer-b", "peer-c")
NOW = 1000.0


def _router() -> Router:
    router = Router(validator=router_validator(validator()), rng=random.Random(7))
    for index, peer in enumerate(PEERS):
        router.add_peer(peer, NOW, outbound=index == 0)
    for topic in (OPEN_TOPIC, PROTECTED_TOPIC):
        router.subscribe(topic, NOW)
    return router


def _unframed(framed: bytes) -> bytes:
    (frame,) = FrameDecoder(len(framed)).feed(framed)
    return frame


def fuzz_relay_rpc(data: bytes) -> None:
    """Each record: one byte choosing the sending peer and the time step, then an RPC."""
    router = _router()
    now = NOW
    max_frame = router.params.max_rpc_frame_size
    for record in records(data):
        if not record:
            continue
        now += (record[0] >> 2) * 0.25
        router.handle_rpc(PEERS[record[0] % 3], record[1:], now)
        if record[0] & 0x80:
            router.heartbeat(now)
    for action in router.take_actions():
        if isinstance(action, Send):
            frame = _unframed(action.frame)
            check(len(frame) <= max_frame, f"a {len(frame)}-byte frame to {action.peer}")
            try:
                decode_rpc(frame)
            except RpcError as exc:
                raise AssertionError(
                    f"the router sent an RPC that does not decode: {exc}"
                ) from None


def _seeds() -> Iterable[bytes]:
    subscribe = _unframed(encode_subscriptions([(OPEN_TOPIC, True), (PROTECTED_TOPIC, True)]))
    unsubscribe = _unframed(encode_subscriptions([(OPEN_TOPIC, False)]))
    messages = sample_messages()
    publish = [
        _unframed(encode_publish_frame(OPEN_TOPIC.encode(), messages[0].encode())),
        _unframed(encode_publish_frame(PROTECTED_TOPIC.encode(), messages[2].encode())),
        _unframed(encode_publish_frame(OPEN_TOPIC.encode(), messages[1].encode())),
    ]
    batch = ControlBatch()
    batch.grafts += [OPEN_TOPIC, PROTECTED_TOPIC]
    batch.prunes.append((OPEN_TOPIC, 60))
    known = message_id(messages[0].encode())
    batch.ihave.append((OPEN_TOPIC, [known, b"\x01" * 32]))
    batch.iwant += [known, b"\x02" * 32]
    batch.idontwant.append(b"\x03" * 32)
    control = [_unframed(f) for f in batch.encode(64 * 1024, 1024)]
    yield join_records([b"\x01" + subscribe, b"\x81" + publish[0], b"\x05" + control[0]])
    yield join_records([b"\x00" + publish[1], b"\x80" + publish[2], b"\x02" + unsubscribe])
    yield join_records([b"\x01" + subscribe, b"\x01" + control[0], b"\xfd" + control[0]])
    yield join_records([b"\x00" + frame for frame in publish] + [b"\x80"])


def fuzz_relay_traffic(data: bytes) -> None:
    """Each record is a relay frame as read from a peer and, length-prefixed, as queued to
    one: the bandwidth meter splits it by kind without raising and counts every byte once."""
    meter = BandwidthMeter(0.0)
    meter.kinds.set_topic("/chinwag/1/dm-x/proto", "chat")
    traffic = RelayTraffic(meter)
    expected_in = expected_out = 0
    for record in records(data):
        traffic.received(record)
        expected_in += len(encode_uvarint(len(record))) + len(record)
        framed = encode_uvarint(len(record)) + record
        traffic.sent(framed)
        traffic.sent(framed)  # the same frame to the next peer: remembered, counted again
        expected_out += 2 * len(framed)
    snapshot = meter.snapshot(1.0)
    counted_in = sum(line.bytes_in for line in snapshot.kinds)
    counted_out = sum(line.bytes_out for line in snapshot.kinds)
    check(counted_in == expected_in, f"{counted_in} bytes counted in, {expected_in} read")
    check(counted_out == expected_out, f"{counted_out} bytes counted out, {expected_out} sent")


TARGETS = (
    Target(
        name="relay_rpc",
        decoder="chat.waku.relay.wire.decode_rpc via chat.waku.relay.core.Router.handle_rpc "
        "(with heartbeats)",
        contract="handle_rpc and heartbeat never raise (a bad RPC costs the peer score); every "
        "frame the router sends decodes and fits the frame limit",
        fuzz=fuzz_relay_rpc,
        seeds=_seeds,
        max_len=8192,
        tokens=(OPEN_TOPIC.encode(), PROTECTED_TOPIC.encode()),
    ),
    Target(
        name="relay_traffic",
        decoder="chat.waku.relay.traffic.RelayTraffic.received/sent (the bandwidth meter's "
        "split of relay frames by kind)",
        contract="never raises; every byte of every frame is counted once, in and out",
        fuzz=fuzz_relay_traffic,
        seeds=_seeds,
        max_len=8192,
        tokens=(OPEN_TOPIC.encode(), b"/chinwag/1/dm-x/proto"),
        weight=0.5,
    ),
)
