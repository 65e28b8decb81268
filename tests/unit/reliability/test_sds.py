from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.reliability.sds import (
    JS_DEFAULTS,
    Acknowledged,
    Delivered,
    FrameKind,
    HistoryEntry,
    Missing,
    PossiblyAcknowledged,
    SdsChannel,
    SdsError,
    SdsFrame,
    SdsParams,
    content_message_id,
)


def _raw_fields(data: bytes) -> list[int]:
    """Field numbers of a protobuf message, in wire order (varint and bytes fields only)."""
    fields, i = [], 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        number, wire_type = key >> 3, key & 7
        fields.append(number)
        length, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if wire_type == 2:
            i += length
    return fields


def test_field_numbers_follow_the_spec_not_nim_sds() -> None:
    frame = SdsFrame(
        sender_id="s",
        message_id="m",
        channel_id="c",
        lamport=5,
        causal_history=(HistoryEntry("h", b"\x01" * 32),),
        bloom=b"\x00" * 8,
        content=b"hi",
    )
    assert _raw_fields(frame.encode()) == [1, 2, 3, 10, 11, 12, 20]


def test_kinds() -> None:
    assert SdsFrame("s", "m", "c", 1, content=b"x").kind is FrameKind.CONTENT
    assert SdsFrame("s", "m", "c", 1).kind is FrameKind.SYNC
    assert SdsFrame("s", "m", "c", None, content=b"x").kind is FrameKind.EPHEMERAL


frames = st.builds(
    SdsFrame,
    sender_id=st.text(max_size=20),
    message_id=st.text(min_size=1, max_size=64),
    channel_id=st.text(max_size=20),
    lamport=st.none() | st.integers(0, 2**64 - 1),
    causal_history=st.lists(
        st.builds(HistoryEntry, st.text(max_size=64), st.binary(max_size=32)), max_size=5
    ).map(tuple),
    bloom=st.binary(max_size=64),
    content=st.binary(max_size=64),
)


@given(frames)
def test_codec_round_trip(frame: SdsFrame) -> None:
    assert SdsFrame.decode(frame.encode()) == frame


@given(st.binary(max_size=300))
def test_decoder_raises_only_sds_errors(data: bytes) -> None:
    try:
        SdsFrame.decode(data)
    except SdsError:
        pass


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(SdsError, match="over the"):
        SdsFrame.decode(b"\x00" * 200_000)


def _pair(params: SdsParams | None = None) -> tuple[SdsChannel, SdsChannel]:
    p = params or SdsParams()
    return SdsChannel("chat", "alice", p), SdsChannel("chat", "bob", p)


def _send(ch: SdsChannel, text: str, now: int) -> SdsFrame:
    content = text.encode()
    mid = content_message_id(content)
    frame = ch.wrap(content, mid, now)
    ch.mark_sent(mid, retrieval_hint=bytes.fromhex(mid))
    return SdsFrame.decode(frame.encode())


def test_delivery_and_acknowledgement_by_causal_history() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "hello", 1000)
    assert bob.receive(m1, 1001) == [Delivered(m1)]
    reply = _send(bob, "hi alice", 1002)
    assert reply.causal_history[-1].message_id == m1.message_id
    events = alice.receive(reply, 1003)
    assert Acknowledged(m1.message_id, "history") in events
    assert Delivered(reply) in events
    assert alice.is_acknowledged(m1.message_id)
    assert reply.lamport is not None and m1.lamport is not None and reply.lamport > m1.lamport


def test_out_of_order_waits_for_its_dependency_and_reports_it_missing() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)
    m2 = _send(alice, "two", 1001)
    events = bob.receive(m2, 1002)
    assert events == [Missing((HistoryEntry(m1.message_id, bytes.fromhex(m1.message_id)),))]
    assert bob.waiting() == [m2]
    assert bob.receive(m1, 1003) == [Delivered(m1), Delivered(m2)]
    assert bob.waiting() == [] and bob.missing() == []


def test_duplicates_and_own_frames_are_absorbed() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)
    assert bob.receive(m1, 1001) == [Delivered(m1)]
    assert bob.receive(m1, 1002) == []
    assert alice.receive(m1, 1002) == []


def test_retry_returns_the_same_frame() -> None:
    alice, _ = _pair()
    mid = content_message_id(b"x")
    assert alice.wrap(b"x", mid, 1) == alice.wrap(b"x", mid, 999)
    assert [f.message_id for f in alice.unacknowledged()] == [mid]


def test_bloom_hits_acknowledge_after_the_threshold() -> None:
    params = SdsParams(history_length=0)  # only the bloom filter can acknowledge
    alice, bob = _pair(params)
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    sync1 = bob.make_sync("sync-1", 1002)
    sync2 = bob.make_sync("sync-2", 1003)
    assert sync1 is not None and sync2 is not None and sync1.kind is FrameKind.SYNC
    assert alice.receive(sync1, 1004) == [PossiblyAcknowledged(m1.message_id, 1)]
    assert alice.receive(sync2, 1005) == [Acknowledged(m1.message_id, "bloom")]


def test_sync_is_not_sent_with_an_empty_log_and_is_never_logged() -> None:
    alice, bob = _pair()
    assert alice.make_sync("s", 1) is None
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    sync = bob.make_sync("s", 1002)
    assert sync is not None
    alice.receive(sync, 1003)
    assert alice.receive(sync, 1004) == []  # nothing delivered, nothing logged


def test_ephemeral_is_delivered_at_once() -> None:
    alice, bob = _pair()
    eph = alice.ephemeral(b"typing", "e1")
    assert bob.receive(eph, 1) == [Delivered(eph)]


def test_lost_dependencies_are_given_up_after_a_timeout() -> None:
    alice, bob = _pair()
    _send(alice, "one", 1000)
    m2 = _send(alice, "two", 1001)
    bob.receive(m2, 5000)
    assert bob.drop_lost(now_ms=5000 + 59_999, older_than_ms=60_000) == []
    assert bob.drop_lost(now_ms=5000 + 60_000, older_than_ms=60_000) == [m2]
    assert bob.waiting() == []


def test_overhead_with_our_defaults_stays_under_one_kilobyte() -> None:
    long_alice = SdsChannel("c" * 64, "a" * 64)
    for i in range(10):
        _send(long_alice, f"message {i}", 1000 + i)
    content = b"x"
    frame = long_alice.wrap(content, content_message_id(content), 2000)
    overhead = len(frame.encode()) - len(content)
    assert len(frame.causal_history) == 2
    assert overhead < 1024, overhead


def test_js_default_bloom_is_the_18_kb_one() -> None:
    channel = SdsChannel("c", "a", JS_DEFAULTS)
    frame = channel.wrap(b"x", "m", 1)
    assert len(frame.bloom) == 18_752


def test_state_survives_export_and_import() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)
    _send(alice, "two", 1001)
    m3 = _send(alice, "three", 1002)
    bob.receive(m1, 1003)
    bob.receive(m3, 1004)  # waits for "two"
    state = json.loads(json.dumps(bob.export_state()))
    restored = SdsChannel.from_state("chat", "bob", state)
    assert restored.lamport == bob.lamport
    assert restored.waiting() == bob.waiting()
    assert [e.message_id for e in restored.missing()] == [e.message_id for e in bob.missing()]
    alice_state = SdsChannel.from_state("chat", "alice", alice.export_state())
    assert [f.message_id for f in alice_state.unacknowledged()] == [
        f.message_id for f in alice.unacknowledged()
    ]
    with pytest.raises(SdsError):
        SdsChannel.from_state("chat", "bob", {"version": 99})
