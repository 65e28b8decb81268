from __future__ import annotations

import pytest

from chat.reliability.store_checks import (
    NS,
    CursorAdvanced,
    FetchQuery,
    MissingFound,
    NotStored,
    PresenceQuery,
    RangeQuery,
    StoreCheckParams,
    StoreChecks,
    Stored,
)

TOPIC = "/waku/2/rs/42/0"
CT = ("/chinwag/1/dm-abc/proto",)
H = [bytes([i]) * 32 for i in range(200)]


def test_published_hash_is_checked_after_a_delay_and_confirmed() -> None:
    checks = StoreChecks()
    checks.track(H[0], now=100)
    assert checks.due(102.9) == []
    (query,) = checks.due(103)
    assert isinstance(query, PresenceQuery) and query.hashes == (H[0],)
    assert checks.due(103) == []  # in flight, not asked twice
    assert checks.presence_answer(query, {H[0]}, "store-1", 103.5) == [Stored(H[0], "store-1")]
    assert checks.tracked_count == 0 and checks.next_wakeup() is None


def test_absent_hashes_are_rechecked_then_given_up() -> None:
    params = StoreCheckParams(first_check_after=3, check_every=3, give_up_after=10)
    checks = StoreChecks(params)
    checks.track(H[0], now=0)
    now = 3.0
    events = []
    while not events:
        (query,) = checks.due(now)
        assert isinstance(query, PresenceQuery)
        events = checks.presence_answer(query, set(), "s", now)
        now += 3
    assert events == [NotStored(H[0])]
    assert now - 3 >= 10


def test_presence_queries_carry_at_most_50_hashes() -> None:
    checks = StoreChecks()
    for h in H[:120]:
        checks.track(h, now=0)
    queries = checks.due(5)
    assert [len(q.hashes) for q in queries if isinstance(q, PresenceQuery)] == [50, 50, 20]


def test_a_failed_presence_query_is_retried() -> None:
    checks = StoreChecks(StoreCheckParams(retry_failed_after=5))
    checks.track(H[0], now=0)
    (query,) = checks.due(3)
    checks.query_failed(query, 3)
    assert checks.due(7.9) == []
    assert [type(q) for q in checks.due(8)] == [PresenceQuery]


def test_scan_finds_missing_messages_and_fetches_them() -> None:
    checks = StoreChecks()
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    checks.received(H[1], now=1990)
    (scan,) = checks.due(2000)
    assert isinstance(scan, RangeQuery)
    assert scan.content_topics == CT and scan.pubsub_topic == TOPIC
    assert scan.start_ns == int((1000 - 60) * NS)  # cursor minus the overlap
    assert scan.end_ns == int((2000 - 20) * NS)  # settle: in-flight messages are not missing
    events = checks.range_answer(scan, [H[1], H[2], H[3]], now=2001)
    assert events == [MissingFound(2), CursorAdvanced(TOPIC, CT, 1980.0)]
    (fetch,) = checks.due(2001)
    assert isinstance(fetch, FetchQuery) and set(fetch.hashes) == {H[2], H[3]}
    # Only H[2] came back; H[3] is asked for again.
    checks.received(H[2], now=2002)
    checks.fetch_answer(fetch, {H[2]}, now=2002)
    (again,) = checks.due(2002)
    assert isinstance(again, FetchQuery) and again.hashes == (H[3],)


def test_our_own_pending_sends_are_not_missing() -> None:
    checks = StoreChecks()
    checks.watch(TOPIC, CT, cursor=0.0, now=100)
    checks.track(H[5], now=99)
    scan = next(q for q in checks.due(100) if isinstance(q, RangeQuery))
    assert checks.range_answer(scan, [H[5]], now=100) == [CursorAdvanced(TOPIC, CT, 80.0)]


def test_failed_scan_keeps_its_start_and_catch_up_runs_at_once() -> None:
    checks = StoreChecks(StoreCheckParams(scan_every=60, retry_failed_after=5))
    checks.watch(TOPIC, CT, cursor=500.0, now=1000)
    (scan,) = checks.due(1000)
    assert isinstance(scan, RangeQuery)
    checks.query_failed(scan, 1000)
    (retry,) = checks.due(1005)
    assert isinstance(retry, RangeQuery) and retry.start_ns == scan.start_ns
    checks.range_answer(retry, [], now=1006)
    assert checks.due(1030) == []  # next periodic scan is at 1066
    checks.catch_up(1030)  # woke from sleep
    (catch,) = checks.due(1030)
    assert isinstance(catch, RangeQuery) and catch.start_ns == int((985 - 60) * NS)


def test_catch_up_is_capped() -> None:
    checks = StoreChecks(StoreCheckParams(max_catch_up=3600))
    checks.watch(TOPIC, CT, cursor=0.0, now=100_000)
    (scan,) = checks.due(100_000)
    assert isinstance(scan, RangeQuery) and scan.start_ns == int((100_000 - 3600) * NS)


def test_topic_groups_hold_one_to_ten_content_topics() -> None:
    checks = StoreChecks()
    with pytest.raises(ValueError):
        checks.watch(TOPIC, (), None, 0)
    with pytest.raises(ValueError):
        checks.watch(TOPIC, tuple(f"/a/1/{i}/p" for i in range(11)), None, 0)


def test_received_cache_expires() -> None:
    checks = StoreChecks(StoreCheckParams(received_cache_for=100))
    checks.watch(TOPIC, CT, cursor=0.0, now=1000)
    checks.received(H[7], now=0)
    checks.received(H[8], now=1000)  # pushes H[7] out of the window
    scan = next(q for q in checks.due(1000) if isinstance(q, RangeQuery))
    assert checks.range_answer(scan, [H[7], H[8]], 1000)[0] == MissingFound(1)
