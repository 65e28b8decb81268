from __future__ import annotations

import itertools

import pytest

from chat.reliability.store_checks import (
    NS,
    CursorAdvanced,
    FetchQuery,
    MissingFound,
    NotRetrieved,
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
    # Only H[2] came back; H[3] is asked for again, after a pause.
    checks.received(H[2], now=2002)
    assert checks.fetch_answer(fetch, {H[2]}, now=2002) == []
    assert checks.due(2006.9) == [] and checks.next_wakeup() == 2007
    (again,) = checks.due(2007)
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


def test_a_catch_up_scans_up_to_now_but_its_cursor_stops_settle_ago() -> None:
    # Woke at 2000: what was sent at 1995 is only in the store; a scan ending at 1980 (settle)
    # would leave it there until the next periodic scan, a minute later.
    checks = StoreChecks(StoreCheckParams(settle=20, overlap=60, scan_every=60))
    checks.watch(TOPIC, CT, cursor=1000.0, now=1500)
    (scan,) = checks.due(1500)
    assert isinstance(scan, RangeQuery) and not scan.catch_up
    assert scan.end_ns == int(1480 * NS)
    checks.range_answer(scan, [], now=1500)
    checks.catch_up(2000)
    (catch,) = checks.due(2000)
    assert isinstance(catch, RangeQuery) and catch.catch_up
    assert (catch.start_ns, catch.end_ns) == (int((1480 - 60) * NS), int(2000 * NS))
    events = checks.range_answer(catch, [H[1]], now=2000.5)
    assert events == [MissingFound(1), CursorAdvanced(TOPIC, CT, 1980.0)]
    # The next periodic scan looks at the unsettled stretch again, settled this time.
    (periodic,) = [q for q in checks.due(2060.5) if isinstance(q, RangeQuery)]
    assert not periodic.catch_up
    assert (periodic.start_ns, periodic.end_ns) == (int(1920 * NS), int(2040.5 * NS))


def test_a_catch_up_asked_during_a_scan_runs_when_it_ends() -> None:
    checks = StoreChecks(StoreCheckParams(settle=20, scan_every=60))
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    (scan,) = checks.due(2000)
    checks.catch_up(2001)  # woke while the periodic scan was out
    assert checks.due(2001) == []  # one scan per group at a time
    checks.range_answer(scan, [], now=2002)
    (catch,) = checks.due(2002)
    assert isinstance(catch, RangeQuery) and catch.catch_up and catch.end_ns == int(2002 * NS)


def test_a_failed_catch_up_is_retried_as_a_catch_up() -> None:
    checks = StoreChecks(StoreCheckParams(settle=20, retry_failed_after=5))
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    checks.catch_up(2000)
    (catch,) = checks.due(2000)
    checks.query_failed(catch, 2000)  # no store node reachable yet
    (retry,) = checks.due(2005)
    assert isinstance(retry, RangeQuery) and retry.catch_up and retry.end_ns == int(2005 * NS)
    assert retry.start_ns == catch.start_ns


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


def _listed(checks: StoreChecks, hashes: list[bytes], now: float) -> list[object]:
    """Run the due scan and answer it with these hashes."""
    scan = next(q for q in checks.due(now) if isinstance(q, RangeQuery))
    return list(checks.range_answer(scan, hashes, now))


def test_pending_fetches_count_for_the_next_wakeup() -> None:
    checks = StoreChecks()
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    _listed(checks, [H[1]], now=2001)
    assert checks.next_wakeup() == 2001  # the fetch is due now, not with the next scan


def test_a_hash_the_store_lists_but_never_returns_is_retried_with_backoff_then_given_up() -> None:
    params = StoreCheckParams(retry_failed_after=5, max_fetch_delay=30, fetch_attempts=5)
    checks = StoreChecks(params)
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    assert _listed(checks, [H[1]], now=2000) == [MissingFound(1), CursorAdvanced(TOPIC, CT, 1980.0)]
    now, asked_at, events = 2000.0, [], []
    while not events:
        wake = checks.next_wakeup()
        assert wake is not None and wake >= now
        assert [q for q in checks.due(wake - 0.001) if isinstance(q, FetchQuery)] == []
        now = wake
        for query in checks.due(now):
            if isinstance(query, RangeQuery):  # the periodic scan finds nothing new
                checks.range_answer(query, [], now)
            elif isinstance(query, FetchQuery):
                asked_at.append(now)
                events = checks.fetch_answer(query, set(), now)
    assert events == [NotRetrieved(H[1])]
    assert [b - a for a, b in itertools.pairwise(asked_at)] == [5, 10, 20, 30]  # capped
    # Given up is given up: listed again by an overlapping scan, it is not fetched again.
    checks.catch_up(now)
    assert _listed(checks, [H[1]], now) == [CursorAdvanced(TOPIC, CT, now - 20)]
    assert [q for q in checks.due(now + 1000) if isinstance(q, FetchQuery)] == []


def test_a_failed_fetch_waits_before_retrying_and_is_not_an_answer() -> None:
    params = StoreCheckParams(retry_failed_after=5, max_fetch_delay=300, fetch_attempts=2)
    checks = StoreChecks(params)
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    _listed(checks, [H[1]], now=2000)
    now = 2000.0
    for wait in (5, 10, 20, 40):  # no store answers: back off, never give up for that
        (fetch,) = [q for q in checks.due(now) if isinstance(q, FetchQuery)]
        checks.query_failed(fetch, now)
        assert [q for q in checks.due(now + wait - 0.001) if isinstance(q, FetchQuery)] == []
        now += wait
    (fetch,) = [q for q in checks.due(now) if isinstance(q, FetchQuery)]
    assert checks.fetch_answer(fetch, set(), now) == []  # first answer without it
    now += 160
    (fetch,) = [q for q in checks.due(now) if isinstance(q, FetchQuery)]
    assert checks.fetch_answer(fetch, set(), now) == [NotRetrieved(H[1])]


def test_a_fetch_answered_while_the_message_arrived_otherwise_is_done() -> None:
    checks = StoreChecks()
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    _listed(checks, [H[1], H[2]], now=2000)
    (fetch,) = [q for q in checks.due(2000) if isinstance(q, FetchQuery)]
    checks.received(H[1], now=2000.5)  # arrived by relay meanwhile
    checks.fetch_answer(fetch, {H[2]}, now=2001)  # H[2] returned (whatever became of it)
    assert checks.next_wakeup() == 2060 and checks.due(5000) != []
    assert [q for q in checks.due(10_000) if isinstance(q, FetchQuery)] == []


def test_a_wanted_hash_is_fetched_once_and_not_again_after_it_arrived() -> None:
    checks = StoreChecks()
    checks.want(b"h" * 32, 100.0)
    checks.want(b"h" * 32, 100.0)
    (query,) = checks.due(100.0)
    assert isinstance(query, FetchQuery) and query.hashes == (b"h" * 32,)
    assert checks.fetch_answer(query, {b"h" * 32}, 101.0) == []
    checks.want(b"h" * 32, 102.0)
    assert checks.due(200.0) == []


def test_scan_now_scans_one_group_up_to_now_at_once() -> None:
    checks = StoreChecks()
    other = ("/chinwag/1/other/proto",)
    checks.watch(TOPIC, CT, cursor=1000.0, now=2000)
    checks.watch(TOPIC, other, cursor=1000.0, now=2000)
    for scan in checks.due(2000):
        assert isinstance(scan, RangeQuery)
        checks.range_answer(scan, [], now=2000)
    assert checks.due(2010) == []  # both scanned; the next scans are a minute away
    checks.scan_now(TOPIC, CT, now=2010)
    (scan,) = checks.due(2010)
    assert isinstance(scan, RangeQuery) and scan.content_topics == CT
    assert scan.end_ns == int(2010 * NS)  # up to now: a fresh message counts too
    checks.scan_now(TOPIC, ("/chinwag/1/unwatched/proto",), now=2010)  # nothing to scan
