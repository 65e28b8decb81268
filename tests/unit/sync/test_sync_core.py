"""Reconciliation core: two random sets reconcile to their union, and only the differences
are named; payloads stay within their budgets; every payload survives the wire."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.waku.sync.core import (
    ItemIndex,
    PeerStrikes,
    SyncLimits,
    SyncRefused,
    SyncSession,
    TopicMismatch,
    fingerprint_of,
    split_bound,
)
from chat.waku.sync.wire import (
    MAX_ITEMS,
    MAX_RANGES,
    ZERO_HASH,
    RangeKind,
    SyncId,
    SyncPayload,
    SyncRange,
    decode_payload,
    encode_payload,
)

WINDOW = (1_000, 10**6)
TOPICS = ("/waku/2/rs/1/0",)


def sync_id(timestamp: int, seed: int) -> SyncId:
    # A hash names one message, so it comes with one timestamp (XOR would cancel a pair).
    digest = hashlib.sha256(timestamp.to_bytes(8, "big") + seed.to_bytes(8, "big")).digest()
    return (timestamp, digest)


def run_session(
    ours: set[SyncId], theirs: set[SyncId], limits: SyncLimits
) -> tuple[SyncSession, SyncSession, int]:
    """Initiator over `ours`, responder over `theirs`; every payload crosses the codec.
    Returns both sessions and the bytes exchanged."""
    initiator = SyncSession(ItemIndex(ours), TOPICS, limits)
    responder = SyncSession(ItemIndex(theirs), TOPICS, limits)
    payload = initiator.start(*WINDOW)
    sides = (responder, initiator)
    turn = 0
    exchanged = 0
    while True:
        data = encode_payload(payload)
        exchanged += len(data)
        received = decode_payload(data)
        assert received == payload
        side = sides[turn % 2]
        if not received.ranges:
            side.received_final()
            break
        payload = side.respond(received)
        assert len(payload.ranges) <= MAX_RANGES and payload.item_count <= MAX_ITEMS
        turn += 1
    return initiator, responder, exchanged


timestamps = st.integers(min_value=WINDOW[0], max_value=WINDOW[0] + 50)
ids = st.builds(sync_id, timestamps, st.integers(0, 10**6))


@settings(max_examples=150, deadline=None)
@given(
    shared=st.sets(ids, max_size=300),
    only_ours=st.sets(ids, max_size=60),
    only_theirs=st.sets(ids, max_size=60),
    threshold=st.integers(1, 12),
    partitions=st.integers(2, 5),
)
def test_two_random_sets_find_exactly_their_differences(
    shared: set[SyncId],
    only_ours: set[SyncId],
    only_theirs: set[SyncId],
    threshold: int,
    partitions: int,
) -> None:
    ours = shared | only_ours
    theirs = shared | only_theirs
    limits = SyncLimits(threshold=threshold, partitions=partitions)
    initiator, responder, _ = run_session(ours, theirs, limits)
    assert initiator.we_have == ours - theirs
    assert initiator.we_need == theirs - ours
    assert responder.we_have == theirs - ours
    assert responder.we_need == ours - theirs
    # After transfer both sides hold the union.
    assert ours | initiator.we_need == theirs | responder.we_need == ours | theirs


def test_items_outside_the_window_are_not_reconciled() -> None:
    inside = {sync_id(5_000, n) for n in range(10)}
    before = {sync_id(10, n) for n in range(100, 110)}
    initiator, _, _ = run_session(inside, before, SyncLimits(threshold=4))
    assert initiator.we_have == inside
    assert initiator.we_need == set()


def test_equal_sets_end_after_one_round_trip() -> None:
    items = {sync_id(2_000 + n, n) for n in range(5_000)}
    initiator, responder, exchanged = run_session(items, set(items), SyncLimits())
    assert initiator.we_have == initiator.we_need == set()
    assert responder.rounds == 1
    assert exchanged < 100


def test_one_missing_item_among_thousands_costs_far_less_than_the_set() -> None:
    items = {sync_id(2_000 + 3 * n, n) for n in range(20_000)}
    missing = sorted(items)[12_345]
    initiator, responder, exchanged = run_session(items, items - {missing}, SyncLimits())
    assert initiator.we_have == {missing}
    assert responder.we_need == {missing}
    assert exchanged < 40 * 20_000 / 20


def test_equal_timestamps_split_on_hash_prefix_bounds() -> None:
    ours = {sync_id(7_000, n) for n in range(400)}
    theirs = {item for item in ours if item[1][0] % 7}
    initiator, _, _ = run_session(ours, theirs, SyncLimits(threshold=3, partitions=3))
    assert initiator.we_have == ours - theirs


def test_split_bound_is_one_nwaku_writes_exactly() -> None:
    before = (5, bytes([1, 2, 3]) + bytes(29))
    after = (5, bytes([7, 2, 9, 4]) + bytes(28))
    # Cut after the first non-zero byte: nwaku writes that prefix and reads the same bound.
    assert split_bound(before, after) == (5, bytes([7]) + bytes(31))
    leading_zeros = (5, bytes([0, 0, 9, 4]) + bytes(28))
    assert split_bound((5, bytes(31) + b"\1"), leading_zeros) == (5, bytes([0, 0, 9]) + bytes(29))
    # Same first byte: no such bound lies between the two.
    assert split_bound(before, (5, bytes([1, 2, 9]) + bytes(29))) is None
    assert split_bound((4, after[1]), after) == (5, ZERO_HASH)
    assert decode_payload(encode_payload(SyncPayload((), (), 5, (SyncRange(
        (5, bytes([7]) + bytes(31)), RangeKind.SKIP),)))).ranges[0].upper[1][0] == 7  # fmt: skip


def test_items_no_bound_separates_go_out_as_one_item_set() -> None:
    # 30 items at one timestamp whose hashes all start with the same byte: no bound nwaku
    # writes exactly lies between them, so they cannot be split below the threshold.
    same_first_byte = {(7_000, bytes([0x42]) + sync_id(7_000, n)[1][1:]) for n in range(30)}
    theirs = set(sorted(same_first_byte)[::2])
    initiator, responder, _ = run_session(same_first_byte, theirs, SyncLimits(threshold=4))
    assert initiator.we_have == same_first_byte - theirs
    assert responder.rounds <= 2


def test_fingerprint_is_the_xor_of_hashes() -> None:
    first = bytes([0xF0]) + bytes(31)
    second = bytes([0x0F]) + bytes(30) + b"\x01"
    assert fingerprint_of([first, second]) == bytes([0xFF]) + bytes(30) + b"\x01"
    index = ItemIndex([(1, first), (2, second)])
    assert index.fingerprint(0, 2) == fingerprint_of([first, second])
    assert index.fingerprint(1, 2) == second


PING = (SyncRange((9, ZERO_HASH), RangeKind.FINGERPRINT, bytes(31) + b"\1"),)


def test_other_topics_or_a_content_filter_are_refused_and_none_means_all() -> None:
    session = SyncSession(ItemIndex([]), TOPICS)
    with pytest.raises(TopicMismatch):
        session.respond(SyncPayload((*TOPICS, "/waku/2/rs/1/1"), (), 0, PING))
    with pytest.raises(TopicMismatch):
        session.respond(SyncPayload(("/waku/2/rs/2/0",), (), 0, PING))
    with pytest.raises(TopicMismatch):
        session.respond(SyncPayload(TOPICS, ("/app/1/chat/proto",), 0, PING))
    answer = session.respond(SyncPayload((), (), 0, PING))  # nwaku's "all topics"
    assert answer.pubsub_topics == TOPICS and answer.ranges


def test_a_session_ends_after_its_round_limit() -> None:
    session = SyncSession(ItemIndex([]), TOPICS, SyncLimits(max_rounds=2))
    ping = SyncPayload(TOPICS, (), 0, PING)
    session.respond(ping)
    session.respond(ping)
    with pytest.raises(SyncRefused, match="rounds"):
        session.respond(ping)


def test_a_session_ends_when_the_differences_exceed_the_limit() -> None:
    session = SyncSession(ItemIndex([]), TOPICS, SyncLimits(max_differences=5))
    items = tuple(sorted(sync_id(10 + n, n) for n in range(6)))
    item_set = SyncRange((100, ZERO_HASH), RangeKind.ITEM_SET, items=items)
    flood = SyncPayload(TOPICS, (), 0, (item_set,))
    with pytest.raises(SyncRefused, match="differences"):
        session.respond(flood)


def test_strikes_ban_a_peer_for_a_while() -> None:
    strikes = PeerStrikes(limit=2, window=10.0, ban=60.0)
    strikes.strike("peer", 0.0)
    assert not strikes.banned("peer", 1.0)
    strikes.strike("peer", 5.0)
    assert strikes.banned("peer", 6.0)
    assert not strikes.banned("peer", 66.0)
    strikes.strike("other", 0.0)
    strikes.strike("other", 20.0)  # outside the window: still one strike
    assert not strikes.banned("other", 21.0)
