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
    Lost,
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


def test_a_reply_to_our_frame_acknowledged_before_the_transport_answered_is_delivered() -> None:
    """Light push: the service node relays our frame, the peer replies naming it, and the
    reply arrives before the push's answer (mark_sent). The reply must not wait for our own
    frame; it joins our log, and the hint given later is kept."""
    alice, bob = _pair()
    content = b"pushed"
    mid = content_message_id(content)
    m1 = SdsFrame.decode(alice.wrap(content, mid, 1000).encode())  # not marked sent yet
    assert bob.receive(m1, 1001) == [Delivered(m1)]
    reply = _send(bob, "got it", 1002)
    events = alice.receive(reply, 1003)
    assert events == [Acknowledged(mid, "history"), Delivered(reply)]
    assert alice.waiting() == [] and alice.missing() == []
    alice.mark_sent(mid, retrieval_hint=bytes.fromhex(mid))  # the push answers late
    sync = alice.make_sync("sync-1", 1004)
    assert sync is not None
    assert HistoryEntry(mid, bytes.fromhex(mid)) in sync.causal_history


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
    params = SdsParams(history_length=0, sync_history_length=0)  # only the bloom acknowledges
    alice, bob = _pair(params)
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    sync1 = bob.make_sync("sync-1", 1002)
    sync2 = bob.make_sync("sync-2", 1003)
    assert sync1 is not None and sync2 is not None and sync1.kind is FrameKind.SYNC
    assert alice.receive(sync1, 1004) == [PossiblyAcknowledged(m1.message_id, 1)]
    assert alice.receive(sync2, 1005) == [Acknowledged(m1.message_id, "bloom")]


def _bloom_false_positive(bloom: bytes, params: SdsParams) -> str:
    from chat.reliability.bloom import BloomFilter

    filt = BloomFilter.from_bytes(bloom, params.bloom_capacity, params.bloom_error_rate)
    n = 0
    while f"a{n}" not in filt:
        n += 1
    return f"a{n}"


def test_bloom_hits_from_frames_older_than_our_message_do_not_count() -> None:
    alice, bob = _pair()
    for i in range(300):  # bob's bloom is busy enough to have false positives
        bob.receive(SdsFrame("carol", f"c{i:04d}", "chat", 1000 + i, (), b"", b"x"), 1000)
    bob_frame = bob.wrap(b"bob says", "b1", now_ms=5000)  # built before alice's message
    fp = _bloom_false_positive(bob_frame.bloom, SdsParams())
    alice.wrap(b"alice says", fp, now_ms=6000)
    alice.mark_sent(fp)
    first = alice.receive(bob_frame, 7000)
    resent = alice.receive(bob_frame, 67_000)  # bob's outbox re-sends the same frame
    ack_events = (Acknowledged, PossiblyAcknowledged)
    assert not [e for e in first + resent if isinstance(e, ack_events)]
    assert not alice.is_acknowledged(fp)


def test_one_incoming_message_counts_one_bloom_hit_however_often_it_arrives() -> None:
    params = SdsParams(history_length=0, sync_history_length=0)  # only the bloom acknowledges
    alice, bob = _pair(params)
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    sync1 = bob.make_sync("sync-1", 1002)
    sync2 = bob.make_sync("sync-2", 1003)
    assert sync1 is not None and sync2 is not None
    assert alice.receive(sync1, 1004) == [PossiblyAcknowledged(m1.message_id, 1)]
    assert alice.receive(sync1, 1005) == []
    assert not alice.is_acknowledged(m1.message_id)
    restored = SdsChannel.from_state("chat", "alice", json.loads(json.dumps(alice.export_state())))
    assert restored.receive(sync1, 1006) == []
    assert restored.receive(sync2, 1007) == [Acknowledged(m1.message_id, "bloom")]


def test_received_ids_take_one_place_in_the_bloom_filter() -> None:
    from chat.reliability.bloom import BloomFilter

    params = SdsParams()
    bob = SdsChannel("chat", "bob", params)
    ids = [f"id{i:04d}" for i in range(300)]  # under the 400-id capacity: none may roll out
    for i, mid in enumerate(ids):
        bob.receive(SdsFrame("alice", mid, "chat", 100 + i, (), b"", b"x"), 1000)
    sync = bob.make_sync("s", 2000)
    assert sync is not None
    bloom = BloomFilter.from_bytes(sync.bloom, params.bloom_capacity, params.bloom_error_rate)
    assert all(mid in bloom for mid in ids)


def test_ids_trimmed_from_the_log_are_still_recognised() -> None:
    bob = SdsChannel("chat", "bob", SdsParams(log_length=3))
    frames = [SdsFrame("p", f"id{i}", "chat", 100 + i, (), b"", b"x") for i in range(5)]
    for frame in frames:
        bob.receive(frame, 1000)
    assert bob.receive(frames[0], 1001) == []  # a duplicate, not a new message
    child = SdsFrame("p", "child", "chat", 200, (HistoryEntry("id1"),), b"", b"y")
    assert bob.receive(child, 1002) == [Delivered(child)]
    restored = SdsChannel.from_state(
        "chat", "bob", json.loads(json.dumps(bob.export_state())), SdsParams(log_length=3)
    )
    assert restored.receive(frames[1], 1003) == []


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


def _entry(frame: SdsFrame) -> HistoryEntry:
    return HistoryEntry(frame.message_id, bytes.fromhex(frame.message_id))


def test_a_lost_message_does_not_stop_the_conversation() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)  # never reaches bob
    m2 = _send(alice, "two", 2000)
    m3 = _send(alice, "three", 3000)
    bob.receive(m2, 5000)
    bob.receive(m3, 5001)
    assert bob.give_up_waiting(now_ms=5000 + 59_999, older_than_ms=60_000) == []
    # m2 waited long enough: m1 is declared lost, m2 delivered, and m3 (which only waited
    # for m1 and m2) follows at once.
    events = bob.give_up_waiting(now_ms=5000 + 60_000, older_than_ms=60_000)
    assert events == [Lost((_entry(m1),)), Delivered(m2), Delivered(m3)]
    assert bob.waiting() == [] and bob.missing() == []
    # Later messages arrive normally, including a resend of a frame naming the lost id.
    m4 = _send(alice, "four", 70_000)
    assert bob.receive(m4, 70_001) == [Delivered(m4)]
    late = SdsFrame("alice", "late", "chat", 2500, (_entry(m1),), b"", b"late")
    assert bob.receive(late, 70_002) == [Delivered(late)]
    # The lost message itself, should it turn up after all, is still delivered once.
    assert bob.receive(m1, 80_000) == [Delivered(m1)]
    assert bob.receive(m1, 80_001) == []


def test_giving_up_delivers_waiting_ancestors_first_in_lamport_order() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)  # lost
    m2 = _send(alice, "two", 2000)
    m3 = _send(alice, "three", 3000)
    bob.receive(m3, 5000)  # overdue first, but it depends on m2, which is still young
    bob.receive(m2, 30_000)
    events = bob.give_up_waiting(now_ms=65_000, older_than_ms=60_000)
    assert events == [Lost((_entry(m1),)), Delivered(m2), Delivered(m3)]


def test_lost_ids_survive_export_and_import() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)
    m2 = _send(alice, "two", 2000)
    bob.receive(m2, 5000)
    bob.give_up_waiting(now_ms=70_000, older_than_ms=60_000)
    restored = SdsChannel.from_state("chat", "bob", json.loads(json.dumps(bob.export_state())))
    late = SdsFrame("alice", "late", "chat", 1500, (_entry(m1),), b"", b"late")
    assert restored.receive(late, 70_001) == [Delivered(late)]


def test_a_lamport_far_ahead_of_now_is_refused() -> None:
    bob = SdsChannel("chat", "bob")
    skew = SdsParams().max_lamport_skew_ms
    assert skew == 24 * 3600 * 1000
    evil = SdsFrame("mallory", "m1", "chat", 2**64 - 1, (), b"", b"hi")
    with pytest.raises(SdsError, match="lamport"):
        bob.receive(SdsFrame.decode(evil.encode()), now_ms=1000)
    sync = SdsFrame("mallory", "s1", "chat", 1000 + skew + 1)
    with pytest.raises(SdsError, match="lamport"):
        bob.receive(sync, now_ms=1000)
    assert bob.lamport == 0 and bob.waiting() == []
    at_bound = SdsFrame("carol", "m2", "chat", 1000 + skew, (), b"", b"ok")
    assert bob.receive(at_bound, now_ms=1000) == [Delivered(at_bound)]
    frame = bob.wrap(b"hello", "b1", now_ms=2000)
    assert frame.lamport == 1000 + skew + 1
    SdsFrame.decode(frame.encode())
    json.dumps(bob.export_state())


def test_the_lamport_clock_saturates_below_two_to_the_64() -> None:
    top = 2**64 - 1
    channel = SdsChannel("chat", "a", lamport=top)
    first = channel.wrap(b"one", "m1", now_ms=1)
    second = channel.wrap(b"two", "m2", now_ms=2)
    assert first.lamport == second.lamport == top
    assert SdsFrame.decode(second.encode()) == second
    restored = SdsChannel.from_state("chat", "a", json.loads(json.dumps(channel.export_state())))
    assert restored.lamport == top


def test_a_frame_that_cannot_be_encoded_is_not_buffered() -> None:
    channel = SdsChannel("chat", "a")
    with pytest.raises(SdsError):
        channel.wrap(b"x", "\ud800", now_ms=1)
    assert channel.unacknowledged() == []
    json.dumps(channel.export_state())


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


def test_a_state_saved_before_the_optional_keys_still_loads() -> None:
    alice, bob = _pair()
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    state = json.loads(json.dumps(alice.export_state()))
    for key in ("forgotten", "lost", "bloom_hit_by"):
        del state[key]
    restored = SdsChannel.from_state("chat", "alice", state)
    assert [f.message_id for f in restored.unacknowledged()] == [m1.message_id]
    reply = _send(bob, "two", 1002)
    assert Acknowledged(m1.message_id, "history") in restored.receive(reply, 1003)


def test_a_sync_frame_names_more_of_the_log_than_a_content_frame() -> None:
    alice, bob = _pair(SdsParams(history_length=2, sync_history_length=16))
    sent = [_send(alice, f"m{i}", 1000 + i) for i in range(10)]
    for frame in sent:
        bob.receive(frame, 1100)
    sync = bob.make_sync("sync-1", 1200)
    assert sync is not None and len(sync.causal_history) == 10
    acks = alice.receive(sync, 1300)
    assert {a.message_id for a in acks if isinstance(a, Acknowledged)} == {
        f.message_id for f in sent
    }
    assert all(isinstance(a, Acknowledged) and a.by == "history" for a in acks)


def test_every_delivered_message_is_named_by_some_sync_even_past_the_history_length() -> None:
    alice, bob = _pair(SdsParams(history_length=2, sync_history_length=4))
    sent = [_send(alice, f"m{i}", 1000 + i) for i in range(10)]
    for frame in sent:
        bob.receive(frame, 1100)
    named: list[str] = []
    for n in range(3):
        sync = bob.make_sync(f"sync-{n}", 1200 + n)
        assert sync is not None and len(sync.causal_history) == 4
        named += [e.message_id for e in sync.causal_history]
    assert {f.message_id for f in sent} <= set(named)


def test_a_re_sent_message_is_named_again_by_the_next_sync() -> None:
    alice, bob = _pair(SdsParams(history_length=0, sync_history_length=1))
    first, second = _send(alice, "one", 1000), _send(alice, "two", 1001)
    bob.receive(first, 1002)
    bob.receive(second, 1003)
    assert [e.message_id for e in bob.make_sync("s1", 1004).causal_history] == [  # type: ignore[union-attr]
        first.message_id
    ]
    assert [e.message_id for e in bob.make_sync("s2", 1005).causal_history] == [  # type: ignore[union-attr]
        second.message_id
    ]
    bob.receive(first, 1006)  # alice never saw the ack and sent it again
    assert [e.message_id for e in bob.make_sync("s3", 1007).causal_history] == [  # type: ignore[union-attr]
        first.message_id
    ]


def test_without_bloom_acknowledgements_hits_are_only_possible_acks() -> None:
    params = SdsParams(history_length=0, sync_history_length=0, acknowledge_by_bloom=False)
    alice, bob = _pair(params)
    m1 = _send(alice, "one", 1000)
    bob.receive(m1, 1001)
    for n in range(4):
        sync = bob.make_sync(f"sync-{n}", 1002 + n)
        assert sync is not None
        assert alice.receive(sync, 1010 + n) == [PossiblyAcknowledged(m1.message_id, n + 1)]
    assert not alice.is_acknowledged(m1.message_id)


def test_a_message_still_waiting_for_its_dependencies_is_never_named_in_a_history() -> None:
    alice, bob = _pair()
    m1, m2 = _send(alice, "one", 1000), _send(alice, "two", 1001)
    bob.receive(m2, 1002)  # m2 depends on m1, which is missing
    assert bob.make_sync("s", 1004) is None  # nothing delivered yet: nothing to name
    bob.receive(m1, 1005)
    sync = bob.make_sync("s2", 1006)
    assert sync is not None
    assert {e.message_id for e in sync.causal_history} == {m1.message_id, m2.message_id}
