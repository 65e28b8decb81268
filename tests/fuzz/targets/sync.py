"""Waku Sync (chat/waku/sync/wire.py): reconciliation payloads and transfer messages, read
from any peer that opens a sync stream."""

from __future__ import annotations

from chat.waku.message import WakuMessage
from chat.waku.sync.wire import (
    MAX_ITEMS,
    MAX_RANGES,
    ZERO_HASH,
    RangeKind,
    SyncPayload,
    SyncRange,
    SyncWireError,
    decode_payload,
    decode_transfer,
    encode_payload,
    encode_transfer,
)
from fuzz.contract import Target, check, round_trip


def fuzz_sync_payload(data: bytes) -> None:
    try:
        payload = decode_payload(data)
    except SyncWireError:
        return
    check(len(payload.ranges) <= MAX_RANGES, f"{len(payload.ranges)} ranges")
    check(payload.item_count <= MAX_ITEMS, f"{payload.item_count} items")
    bounds = [payload.lowest] + [r.upper for r in payload.ranges]
    check(bounds == sorted(set(bounds)), "range bounds do not increase")
    # What was decoded encodes again (a bound's prefix may be written shorter) to the same.
    round_trip(payload, decode_payload(encode_payload(payload)))


def fuzz_sync_transfer(data: bytes) -> None:
    try:
        received = decode_transfer(data)
    except SyncWireError:
        return
    check(bool(received.pubsub_topic), "empty topic")
    round_trip(received, decode_transfer(encode_transfer(received.pubsub_topic, received.encoded)))


def _payload_seeds() -> list[bytes]:
    digest = bytes(range(1, 33))
    return [
        encode_payload(SyncPayload()),
        encode_payload(
            SyncPayload(
                ("/waku/2/rs/42/0",),
                (),
                1000,
                (
                    SyncRange((1500, ZERO_HASH), RangeKind.SKIP),
                    SyncRange((2000, ZERO_HASH), RangeKind.FINGERPRINT, fingerprint=digest),
                    SyncRange((2000, digest), RangeKind.ITEM_SET, items=((2000, digest[::-1]),)),
                ),
            )
        ),
    ]


TARGETS = (
    Target(
        name="sync_payload",
        decoder="chat.waku.sync.wire.decode_payload",
        contract="SyncWireError only; ranges and items within bounds; bounds increase; round trip",
        fuzz=fuzz_sync_payload,
        seeds=_payload_seeds,
        max_len=4096,
    ),
    Target(
        name="sync_transfer",
        decoder="chat.waku.sync.wire.decode_transfer",
        contract="SyncWireError only; a topic and a WakuMessage; round trip",
        fuzz=fuzz_sync_transfer,
        seeds=lambda: [
            encode_transfer(
                "/waku/2/rs/42/0", WakuMessage(b"hi", "/a/1/b/proto", timestamp=1).encode()
            )
        ],
        max_len=4096,
    ),
)
