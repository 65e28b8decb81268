"""LightCore, sans-IO: which service nodes a light client holds, failover, gaps, bad pushes,
peer exchange schedule and the health line. Time is a number passed in."""

from __future__ import annotations

from chat.waku.filter.client_core import FilterClientCore, PingResult
from chat.waku.filter.wire import SubscribeType
from chat.waku.light.core import CatchUpFrom, LightCore
from chat.waku.lightpush.client_core import ServicePool

PUBSUB = "/waku/2/rs/1/0"
TOPIC = "/chinwag/1/dm-x/proto"


def light(*peers: str, **options: float) -> LightCore:
    return LightCore(FilterClientCore(list(peers)), ServicePool(list(peers)), **options)  # type: ignore[arg-type]


def subscribe_all(core: LightCore, now: float) -> None:
    """Every node in use confirms every subscription asked of it (and answers pings)."""
    for action in core.filter.due(now):
        if action.kind is SubscribeType.SUBSCRIBER_PING:
            core.filter.on_ping_result(action.peer, PingResult.OK, now)
        else:
            core.filter.on_subscribe_result(action.peer, True, now)


def test_candidates_join_both_pools_once_and_are_bounded() -> None:
    core = light("a", "b", max_candidates=3)
    assert core.add_candidate("c")
    assert not core.add_candidate("c")
    assert not core.add_candidate("d")  # full
    assert core.candidates == ["a", "b", "c"]
    assert core.filter.candidates == ["a", "b", "c"]
    assert core.push.candidates == ["a", "b", "c"]


def test_a_lost_node_is_replaced_in_both_pools_and_the_gap_is_filled_from_its_start() -> None:
    core = light("a", "b", "c", gap_margin=30.0)
    core.filter.subscribe(PUBSUB, [TOPIC])
    assert core.observe_filter(0.0) is None  # new topics, held by no node yet: a gap opens
    subscribe_all(core, 1.0)
    assert core.observe_filter(1.0) == CatchUpFrom(-30.0)  # filled once they are held
    assert core.health().line() == "filter 2/2, push 2/2, store ?"

    assert core.lost("a", 100.0)
    assert core.failovers == 1
    assert core.push.active == ["b", "c"]
    # b still holds everything: the store is asked at once for what only a may have pushed.
    assert core.observe_filter(100.0) == CatchUpFrom(70.0)
    health = core.health()
    assert health.filter_held == 1 and health.push_held == 2 and health.degraded
    subscribe_all(core, 101.0)  # c takes a's place
    assert core.filter.active_peers == ["b", "c"]
    assert core.observe_filter(101.0) is None
    assert core.health().filter_held == 2


def test_the_gap_closes_with_a_catch_up_when_every_node_was_lost() -> None:
    core = light("a", "b", "c", gap_margin=5.0)
    core.filter.subscribe(PUBSUB, [TOPIC])
    subscribe_all(core, 0.0)
    core.observe_filter(0.0)
    core.lost("a", 50.0)
    core.lost("b", 50.0)
    assert core.observe_filter(50.0) is None
    assert core.filter_held() == 0
    subscribe_all(core, 52.0)  # c holds them
    assert core.observe_filter(52.0) == CatchUpFrom(45.0)
    assert core.observe_filter(53.0) is None  # once


def test_pushes_for_topics_never_asked_are_refused_and_the_node_dropped_for_good() -> None:
    core = light("a", "b", "c", max_unrequested_pushes=3)
    core.filter.subscribe(PUBSUB, [TOPIC])
    assert core.accept_push("a", (PUBSUB, TOPIC))
    for _ in range(2):
        assert not core.accept_push("a", (PUBSUB, "/other/1/x/proto"))
    assert "a" in core.candidates
    assert not core.accept_push("a", (PUBSUB, "/other/1/x/proto"))
    assert "a" not in core.candidates and "a" in core.dropped
    assert "a" not in core.filter.candidates and "a" not in core.push.candidates
    assert not core.add_candidate("a")  # peer exchange cannot bring it back
    subscribe_all(core, 0.0)
    assert core.filter.active_peers == ["b", "c"]


def test_peer_exchange_is_asked_while_few_nodes_are_known_and_not_more_often() -> None:
    core = light("a", wanted_candidates=3, exchange_interval=60.0)
    assert core.exchange_due(0.0)
    assert not core.exchange_due(30.0)
    assert core.next_exchange() == 60.0
    assert core.exchange_due(60.0)
    core.exchange_unanswered(61.0)  # no node could be asked: again in 5 s, not 60
    assert core.next_exchange() == 66.0
    assert core.exchange_due(66.0)
    core.add_candidate("b")
    core.add_candidate("c")
    assert not core.exchange_due(500.0)
    assert core.next_exchange() is None


def test_push_failures_and_store_answers_show_in_the_health_line() -> None:
    core = light("a", "b")
    core.push_results(succeeded=["a"], failed=["b"])
    core.store_result(False)
    assert core.health().line() == "filter 0/2, push 1/2, store failing"
    core.push_results(succeeded=["b"], failed=[])
    core.store_result(True)
    assert core.health().line() == "filter 0/2, push 2/2, store ok"


def test_pushes_from_a_peer_that_is_not_one_of_our_service_nodes_are_refused() -> None:
    # Any connected peer can open a filter push stream: one we never subscribed with must
    # not feed the inbox (on a protected shard it would skip the service nodes' checks),
    # and its pushes are not counted (a stranger is not a candidate to score).
    core = light("a", "b")
    core.filter.subscribe(PUBSUB, [TOPIC])
    subscribe_all(core, 0.0)
    assert core.accept_push("a", (PUBSUB, TOPIC))
    for _ in range(5):
        assert not core.accept_push("stranger", (PUBSUB, TOPIC))
    assert "stranger" not in core.unrequested and "stranger" not in core.dropped
