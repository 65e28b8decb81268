"""The filter light client's node management: subscribe to 2, ping, resubscribe, replace."""

from __future__ import annotations

from chat.waku.filter.client_core import DEAF_RETRY, FilterClientCore, PingResult
from chat.waku.filter.wire import SubscribeType

PUBSUB = "/waku/2/rs/42/0"


def subscribed_core() -> FilterClientCore:
    core = FilterClientCore(["a", "b", "c"])
    core.subscribe(PUBSUB, ["/x/1/t/p"])
    actions = core.due(now=0)
    assert [(a.peer, a.kind) for a in actions] == [
        ("a", SubscribeType.SUBSCRIBE),
        ("b", SubscribeType.SUBSCRIBE),
    ]
    for action in actions:
        core.on_subscribe_result(action.peer, True, now=0)
    return core


def test_subscribes_two_nodes_then_pings_every_minute() -> None:
    core = subscribed_core()
    assert core.due(now=59) == []
    assert core.next_wakeup(now=59) == 60
    pings = core.due(now=60)
    assert [(a.peer, a.kind) for a in pings] == [
        ("a", SubscribeType.SUBSCRIBER_PING),
        ("b", SubscribeType.SUBSCRIBER_PING),
    ]
    assert core.due(now=61) == []  # one request in flight per node
    core.on_ping_result("a", PingResult.OK, now=61)
    assert core.next_wakeup(now=61) == 121


def test_404_resubscribes_without_counting_a_failure() -> None:
    core = subscribed_core()
    core.due(now=60)
    core.on_ping_result("a", PingResult.NOT_SUBSCRIBED, now=60)
    (action,) = core.due(now=60)
    assert (action.peer, action.kind, action.content_topics) == (
        "a",
        SubscribeType.SUBSCRIBE,
        ("/x/1/t/p",),
    )


def test_failed_ping_resubscribes_and_a_failed_subscribe_replaces() -> None:
    core = subscribed_core()
    core.due(now=60)
    core.on_ping_result("a", PingResult.FAILED, now=60)
    (action,) = core.due(now=60)
    assert (action.peer, action.kind) == ("a", SubscribeType.SUBSCRIBE)
    core.on_subscribe_result("a", False, now=61)
    assert core.active_peers == ["b"]
    (action,) = core.due(now=61)
    assert core.active_peers == ["b", "c"]
    assert (action.peer, action.kind) == ("c", SubscribeType.SUBSCRIBE)
    assert core.replacements == 1


def test_two_consecutive_ping_failures_replace_the_node() -> None:
    core = subscribed_core()
    core.due(now=60)
    core.on_ping_result("a", PingResult.FAILED, now=60)
    for action in core.due(now=60):
        core.on_subscribe_result(action.peer, True, now=60)
    core.due(now=120)
    core.on_ping_result("a", PingResult.FAILED, now=120)
    assert core.active_peers == ["b"]
    assert [a.peer for a in core.due(now=120)] == ["c"]
    assert core.active_peers == ["b", "c"]


def test_replaced_node_comes_back_after_cooldown_when_nothing_else_is_left() -> None:
    core = FilterClientCore(["a", "b"], replaced_node_cooldown=60, wanted_nodes=1)
    core.subscribe(PUBSUB, ["/x/1/t/p"])
    assert [a.peer for a in core.due(now=0)] == ["a"]
    core.on_subscribe_result("a", False, now=0)
    assert [a.peer for a in core.due(now=0)] == ["b"]
    core.on_subscribe_result("b", True, now=0)
    assert core.due(now=30) == []  # b holds: a waits out its full minute
    assert core.next_wakeup(now=30) == 60


def test_while_no_node_holds_anything_a_replaced_node_is_tried_again_soon() -> None:
    core = FilterClientCore(["a"], replaced_node_cooldown=60)
    core.subscribe(PUBSUB, ["/x/1/t/p"])
    assert len(core.due(now=0)) == 1
    core.on_subscribe_result("a", False, now=0)
    assert core.due(now=DEAF_RETRY - 1) == []
    assert core.next_wakeup(now=1) == DEAF_RETRY
    assert [a.peer for a in core.due(now=DEAF_RETRY)] == ["a"]


def test_unsubscribe_is_sent_for_dropped_topics() -> None:
    core = subscribed_core()
    core.unsubscribe(PUBSUB, ["/x/1/t/p"])
    actions = core.due(now=1)
    assert {(a.peer, a.kind) for a in actions} == {
        ("a", SubscribeType.UNSUBSCRIBE),
        ("b", SubscribeType.UNSUBSCRIBE),
    }
    for action in actions:
        core.on_subscribe_result(action.peer, True, now=1)
    assert core.held_by("a") == frozenset()
    assert core.due(now=100) == []  # nothing held: no pings


def test_large_topic_sets_go_in_batches_of_100() -> None:
    core = FilterClientCore(["a"])
    core.subscribe(PUBSUB, [f"/x/1/t{i}/p" for i in range(250)])
    sizes = []
    for _ in range(3):
        (action,) = core.due(now=0)
        sizes.append(len(action.content_topics))
        core.on_subscribe_result("a", True, now=0)
    assert sizes == [100, 100, 50]
    assert len(core.held_by("a")) == 250


def test_dedupe_by_hash() -> None:
    core = FilterClientCore(["a"])
    assert core.is_new(b"h1", now=0)
    assert not core.is_new(b"h1", now=1)
    assert core.is_new(b"h2", now=1)
    assert core.duplicates_dropped == 1
