"""The filter server's subscription table: nwaku's status codes, limits, TTL and push dedupe."""

from __future__ import annotations

from chat.waku.filter.server_core import FilterSubscriptions, rate_limited_response
from chat.waku.filter.wire import SubscribeRequest, SubscribeType
from chat.waku.message import WakuMessage

PUBSUB = "/waku/2/rs/42/0"
OTHER_PUBSUB = "/waku/2/rs/42/1"


def req(kind: SubscribeType | int, pubsub: str | None = PUBSUB, *topics: str) -> SubscribeRequest:
    return SubscribeRequest("r1", int(kind), pubsub, tuple(topics))


def msg(topic: str = "/app/1/chat/proto", payload: bytes = b"hi", ts: int = 1) -> WakuMessage:
    return WakuMessage(payload=payload, content_topic=topic, timestamp=ts)


def test_subscribe_then_ping_then_unsubscribe_all() -> None:
    subs = FilterSubscriptions()
    ok = subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    assert (ok.request_id, ok.status_code, ok.status_desc) == ("r1", 200, "OK")
    assert subs.handle("A", req(SubscribeType.SUBSCRIBER_PING, None), now=1).status_code == 200
    assert subs.handle("A", req(SubscribeType.UNSUBSCRIBE_ALL, None), now=2).status_code == 200
    assert subs.peer_count == 0
    assert subs.subscribers_for(PUBSUB, msg(), now=3) == []


def test_ping_and_unsubscribe_without_subscription_are_404() -> None:
    subs = FilterSubscriptions()
    for kind in (SubscribeType.SUBSCRIBER_PING, SubscribeType.UNSUBSCRIBE_ALL):
        answer = subs.handle("A", req(kind, None), now=0)
        assert answer.status_code == 404
        assert answer.status_desc == "NOT_FOUND: peer has no subscriptions"
    answer = subs.handle("A", req(SubscribeType.UNSUBSCRIBE, PUBSUB, "/a/1/b/c"), now=0)
    assert answer.status_code == 404


def test_unsubscribe_removes_only_named_criteria() -> None:
    subs = FilterSubscriptions()
    subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/a/1/x/p", "/a/1/y/p"), now=0)
    assert subs.handle("A", req(SubscribeType.UNSUBSCRIBE, PUBSUB, "/a/1/x/p"), now=1).ok
    assert subs.criteria_of("A") == {(PUBSUB, "/a/1/y/p")}
    # Naming a criterion the peer does not hold answers 404, as nwaku does.
    assert subs.handle("A", req(SubscribeType.UNSUBSCRIBE, PUBSUB, "/a/1/x/p"), now=2).status_code
    assert subs.handle("A", req(SubscribeType.UNSUBSCRIBE, PUBSUB, "/a/1/y/p"), now=3).ok
    assert subs.peer_count == 0


def test_subscribe_needs_pubsub_topic_and_content_topics() -> None:
    subs = FilterSubscriptions()
    for request in (
        req(SubscribeType.SUBSCRIBE, None, "/a/1/b/c"),
        req(SubscribeType.SUBSCRIBE, PUBSUB),
        req(SubscribeType.UNSUBSCRIBE, None, "/a/1/b/c"),
    ):
        answer = subs.handle("A", request, now=0)
        assert answer.status_code == 400
        assert answer.status_desc == "BAD_REQUEST: pubsubTopic and contentTopics must be specified"
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, ""), now=0).status_code == 400
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, "", "/a/1/b/c"), now=0).status_code == 400
    assert subs.handle("A", req(7, None), now=0).status_code == 400
    assert subs.peer_count == 0


def test_more_than_100_content_topics_is_400_and_1000_too() -> None:
    subs = FilterSubscriptions()
    hundred = [f"/a/1/t{i}/p" for i in range(100)]
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, *hundred), now=0).ok
    for n in (101, 1000):
        topics = [f"/a/1/u{i}/p" for i in range(n)]
        answer = subs.handle("B", req(SubscribeType.SUBSCRIBE, PUBSUB, *topics), now=0)
        assert answer.status_code == 400
        assert answer.status_desc == "BAD_REQUEST: exceeds maximum content topics: 100"
    assert subs.criteria_of("B") == frozenset()


def test_criteria_per_peer_cap_is_503_and_keeps_existing() -> None:
    subs = FilterSubscriptions(max_criteria_per_peer=150)
    first = [f"/a/1/t{i}/p" for i in range(100)]
    second = [f"/a/1/u{i}/p" for i in range(51)]
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, *first), now=0).ok
    answer = subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, *second), now=1)
    assert answer.status_code == 503
    assert (
        answer.status_desc
        == "SERVICE_UNAVAILABLE: peer has reached maximum number of filter criteria"
    )
    assert len(subs.criteria_of("A")) == 100
    # Re-subscribing to criteria already held does not count twice.
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, *first[:50]), now=2).ok


def test_peer_cap_is_503_until_a_subscription_lapses() -> None:
    subs = FilterSubscriptions(max_peers=2, subscription_ttl=300)
    assert subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/a/1/b/c"), now=0).ok
    assert subs.handle("B", req(SubscribeType.SUBSCRIBE, PUBSUB, "/a/1/b/c"), now=100).ok
    answer = subs.handle("C", req(SubscribeType.SUBSCRIBE, PUBSUB, "/a/1/b/c"), now=200)
    assert answer.status_code == 503
    assert answer.status_desc == (
        "SERVICE_UNAVAILABLE: node has reached maximum number of subscriptions: 2"
    )
    # A's subscription lapses at 300 s; C takes its place.
    assert subs.handle("C", req(SubscribeType.SUBSCRIBE, PUBSUB, "/a/1/b/c"), now=301).ok
    assert subs.subscribers_for(PUBSUB, msg("/a/1/b/c"), now=302) == ["B", "C"]


def test_subscription_lapses_after_ttl_unless_pinged() -> None:
    subs = FilterSubscriptions(subscription_ttl=300)
    subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    subs.handle("B", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    assert subs.handle("A", req(SubscribeType.SUBSCRIBER_PING, None), now=250).ok
    assert subs.subscribers_for(PUBSUB, msg(ts=1), now=301) == ["A"]
    assert subs.handle("B", req(SubscribeType.SUBSCRIBER_PING, None), now=301).status_code == 404
    assert subs.expire(now=400) == ["B"]
    assert subs.expire(now=551) == ["A"]
    assert subs.peer_count == 0


def test_matching_needs_both_pubsub_and_content_topic() -> None:
    subs = FilterSubscriptions()
    subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    subs.handle("B", req(SubscribeType.SUBSCRIBE, OTHER_PUBSUB, "/app/1/chat/proto"), now=0)
    assert subs.subscribers_for(PUBSUB, msg(ts=1), now=1) == ["A"]
    assert subs.subscribers_for(OTHER_PUBSUB, msg(ts=2), now=1) == ["B"]
    assert subs.subscribers_for(PUBSUB, msg("/app/1/other/proto", ts=3), now=1) == []


def test_push_dedupe_window_is_two_minutes_and_refreshes() -> None:
    subs = FilterSubscriptions()
    subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    m = msg()
    assert subs.subscribers_for(PUBSUB, m, now=1) == ["A"]
    assert subs.subscribers_for(PUBSUB, m, now=100) == []
    assert subs.subscribers_for(PUBSUB, m, now=219) == []  # seen at 100: window refreshed
    assert subs.handle("A", req(SubscribeType.SUBSCRIBER_PING, None), now=250).ok
    assert subs.subscribers_for(PUBSUB, m, now=338) == []  # refreshed again at 219
    assert subs.subscribers_for(PUBSUB, m, now=459) == ["A"]
    assert subs.duplicates_skipped == 3


def test_dedupe_memory_is_bounded() -> None:
    subs = FilterSubscriptions(max_remembered_hashes=10)
    subs.handle("A", req(SubscribeType.SUBSCRIBE, PUBSUB, "/app/1/chat/proto"), now=0)
    for i in range(50):
        assert subs.subscribers_for(PUBSUB, msg(ts=i + 1), now=1) == ["A"]
    assert len(subs._seen) == 10


def test_rate_limited_answer_is_nwakus() -> None:
    answer = rate_limited_response()
    assert (answer.request_id, answer.status_code) == ("N/A", 429)
    assert answer.status_desc == "filter request rejected due rate limit exceeded"
