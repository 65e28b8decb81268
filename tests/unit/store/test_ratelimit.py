"""Rate limiter: nwaku's bucket arithmetic, flag parsing, fairness under a flood."""

from __future__ import annotations

import pytest

from chat.waku.ratelimit import (
    RateLimit,
    RateLimitError,
    RequestLimiter,
    limiter_for,
    parse_rate_limit,
    period_ratio,
    rate_limits_from_flags,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("store:20/1s", ("store", RateLimit(20, 1.0))),
        ("storev3:5/500ms", ("store", RateLimit(5, 0.5))),
        ("lightpush:10/2m", ("lightpush", RateLimit(10, 120.0))),
        ("100/1h", (None, RateLimit(100, 3600.0))),
    ],
)
def test_parse_nwaku_flag_syntax(text: str, expected: tuple[str | None, RateLimit]) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(
    "text", ["store:20", "relay:1/1s", "store:0/1s", "store:1/1d", "", "relay:off", "store:of"]
)
def test_bad_flags_are_typed_errors(text: str) -> None:
    with pytest.raises(RateLimitError):
        parse_rate_limit(text)


def test_every_served_protocol_is_limited_by_default_and_flags_override() -> None:
    assert rate_limits_from_flags([]) == {
        "store": RateLimit(50, 1.0),
        "lightpush": RateLimit(30, 1.0),
        "filter": RateLimit(30, 60.0),
        "px": RateLimit(10, 1.0),
        "sync": RateLimit(30, 60.0),
    }
    limits = rate_limits_from_flags(["50/1s", "store:20/1s"])
    assert limits["store"] == RateLimit(20, 1.0)
    assert limits["lightpush"] == limits["filter"] == RateLimit(50, 1.0)


def test_off_lifts_a_limit_on_purpose() -> None:
    assert parse_rate_limit("store:off") == ("store", None)
    assert parse_rate_limit("none") == (None, None)
    limits = rate_limits_from_flags(["lightpush:off"])
    assert limits["lightpush"] is None
    assert limits["store"] == RateLimit(50, 1.0)
    everything = rate_limits_from_flags(["off", "filter:10/1m"])
    assert everything == {"store": None, "lightpush": None, "filter": RateLimit(10, 60.0),
                          "px": None, "sync": None}  # fmt: skip


def test_period_ratio_matches_nwaku() -> None:
    assert [period_ratio(p) for p in (0.001, 1.0, 1.5, 60.0, 61.0)] == [10, 10, 3, 3, 2]


def test_unlimited_allows_everything() -> None:
    limiter = RequestLimiter(None)
    assert all(limiter.allow("p", 0.0) for _ in range(10_000))
    assert limiter.tracked_peers == 0


def test_per_peer_long_window_is_nwakus_share() -> None:
    # 4/1s: a peer gets floor(4*10*0.75) = 30 per 10 s, and at most floor(4*0.75) = 3 per second.
    limiter = RequestLimiter(RateLimit(4, 1.0))
    served = 0
    for second in range(10):
        served += sum(limiter.allow("p", second + i / 100) for i in range(10))
    assert served == 30
    assert not limiter.allow("p", 9.99)
    assert limiter.allow("p", 10.0)  # the long window refills


def test_global_bucket_caps_all_peers_together() -> None:
    limiter = RequestLimiter(RateLimit(4, 1.0))
    allowed = [limiter.allow(f"p{i}", 0.0) for i in range(10)]
    assert allowed.count(True) == 4
    assert limiter.allow("p9", 1.0)  # next period


def test_a_flooding_peer_cannot_starve_another_peer() -> None:
    # 20/1s: the flooder may take 15 a second at most, so 5 a second always remain for others.
    limiter = RequestLimiter(RateLimit(20, 1.0))
    other_served = 0
    flood_served = 0
    for tick in range(240):  # one minute in 250 ms steps
        now = tick / 4
        flood_served += sum(limiter.allow("flooder", now + i / 1e6) for i in range(1000))
        other_served += limiter.allow("other", now + 0.1)
    assert other_served == 240
    assert flood_served <= 15 * 60


def test_rejections_cost_no_tokens() -> None:
    limiter = RequestLimiter(RateLimit(2, 1.0))
    assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 0.0)  # a's per-second share (1) is used up
    assert limiter.allow("b", 0.0)  # the global bucket still had b's token


def test_filter_is_per_peer_only() -> None:
    limiter = limiter_for("filter", rate_limits_from_flags([]))
    assert sum(limiter.allow("a", 0.0) for _ in range(100)) == 30
    assert sum(limiter.allow("b", 0.0) for _ in range(100)) == 30
    assert limiter.allow("a", 60.0)


def test_idle_peers_are_forgotten_and_tracking_is_bounded() -> None:
    limiter = RequestLimiter(RateLimit(10, 1.0), max_tracked_peers=100)
    for i in range(1000):
        limiter.allow(f"p{i}", i / 1000)
    assert limiter.tracked_peers <= 101
    limiter.allow("late", 1000.0)
    assert limiter.tracked_peers == 1
