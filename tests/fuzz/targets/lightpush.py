"""Light push v3 and legacy v2 (chat/waku/lightpush/wire.py): requests a service node decodes
and responses a client decodes."""

from __future__ import annotations

from chat.waku.lightpush.wire import (
    LegacyPushRequest,
    LegacyPushResponse,
    LightPushWireError,
    PushRequest,
    PushResponse,
)
from fuzz.contract import Target, round_trip
from fuzz.targets.message import OPEN_TOPIC, sample_messages


def fuzz_push_request(data: bytes) -> None:
    try:
        request = PushRequest.decode(data)
    except LightPushWireError:
        return
    round_trip(request, PushRequest.decode(request.encode()))


def fuzz_push_response(data: bytes) -> None:
    try:
        response = PushResponse.decode(data)
    except LightPushWireError:
        return
    round_trip(response, PushResponse.decode(response.encode()))


def fuzz_legacy_request(data: bytes) -> None:
    try:
        request = LegacyPushRequest.decode(data)
    except LightPushWireError:
        return
    round_trip(request, LegacyPushRequest.decode(request.encode()))


def fuzz_legacy_response(data: bytes) -> None:
    try:
        response = LegacyPushResponse.decode(data)
    except LightPushWireError:
        return
    round_trip(response, LegacyPushResponse.decode(response.encode()))


TARGETS = (
    Target(
        name="lightpush_request",
        decoder="chat.waku.lightpush.wire.PushRequest.decode (v3)",
        contract="LightPushWireError (OversizedMessage included) only; round trip",
        fuzz=fuzz_push_request,
        seeds=lambda: [
            PushRequest("r1", m, OPEN_TOPIC if i % 2 else None).encode()
            for i, m in enumerate(sample_messages())
        ],
    ),
    Target(
        name="lightpush_response",
        decoder="chat.waku.lightpush.wire.PushResponse.decode (v3)",
        contract="LightPushWireError only; round trip",
        fuzz=fuzz_push_response,
        seeds=lambda: [
            PushResponse("r1", 200, "OK", 3).encode(),
            PushResponse("r2", 505, "NO_PEERS_TO_RELAY").encode(),
        ],
        max_len=1024,
    ),
    Target(
        name="lightpush_v2_request",
        decoder="chat.waku.lightpush.wire.LegacyPushRequest.decode (v2)",
        contract="LightPushWireError only; round trip",
        fuzz=fuzz_legacy_request,
        seeds=lambda: [LegacyPushRequest("r1", OPEN_TOPIC, m).encode() for m in sample_messages()],
    ),
    Target(
        name="lightpush_v2_response",
        decoder="chat.waku.lightpush.wire.LegacyPushResponse.decode (v2)",
        contract="LightPushWireError only; round trip",
        fuzz=fuzz_legacy_response,
        seeds=lambda: [
            LegacyPushResponse("r1", True).encode(),
            LegacyPushResponse("r2", False, "no peers").encode(),
        ],
        max_len=1024,
    ),
)
