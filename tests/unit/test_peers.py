"""The peer manager core, driven by injected time: hours of backoff run in microseconds."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.waku.peers import (
    Action,
    Dial,
    Disconnect,
    PeerManager,
    PeerPolicy,
    Service,
)

HOUR = 3600.0


def dials(actions: list[Action]) -> list[str]:
    return [a.peer for a in actions if isinstance(a, Dial)]


def manager(
    policy: PeerPolicy | None = None, shards: tuple[int, ...] = (0, 1), seed: int = 1
) -> PeerManager:
    return PeerManager(shards, random.Random(seed), policy)


# --- backoff ----------------------------------------------------------------------------


def test_backoff_grows_exponentially_within_jitter_bounds_and_caps() -> None:
    policy = PeerPolicy(backoff_base=1.0, backoff_factor=2.0, backoff_cap=300.0, backoff_jitter=0.5)
    pm = manager(policy)
    for failures in range(1, 40):
        raw = min(300.0, 2.0 ** (failures - 1))
        for _ in range(50):
            delay = pm.backoff_delay(failures)
            assert raw * 0.5 <= delay <= raw
    assert max(pm.backoff_delay(1000) for _ in range(200)) <= 300.0


def test_jitter_spreads_peers_that_failed_together() -> None:
    pm = manager()
    for i in range(20):
        pm.add_peer(f"p{i:02}", shards=[0], static=True)
    now = 0.0
    for peer in dials(pm.tick(now)):
        pm.dial_failed(peer, now)
    times = {pm.next_dial_at(f"p{i:02}") for i in range(5)}
    assert len(times) == 5  # five different redial instants, not one thundering herd


def test_zero_jitter_is_exact() -> None:
    pm = manager(
        PeerPolicy(backoff_jitter=0.0, backoff_base=2.0, backoff_factor=3.0, backoff_cap=50.0)
    )
    assert [pm.backoff_delay(n) for n in (1, 2, 3, 4, 5)] == [2.0, 6.0, 18.0, 50.0, 50.0]


def test_unreachable_peer_for_ten_hours_while_another_peer_is_connected() -> None:
    """One static peer that never answers while we have another: dial times follow the
    capped, jittered backoff (the short offline interval is for when we have no peer)."""
    policy = PeerPolicy(backoff_cap=300.0, backoff_jitter=0.5, relay_peers_per_shard=2)
    pm = manager(policy, shards=(0,))
    pm.add_peer("fleet-0", shards=[0], static=True)
    pm.add_peer("fleet-1", shards=[0], static=True)
    pm.connected("fleet-0", 0.0)
    dial_times: list[float] = []
    now = 0.0
    while now < 10 * HOUR:
        for peer in dials(pm.tick(now)):
            dial_times.append(now)
            pm.dial_failed(peer, now)
        now += 0.5
    gaps = [b - a for a, b in itertools.pairwise(dial_times)]
    assert all(gap <= 300.0 + 0.5 for gap in gaps)
    late = gaps[20:]  # long past the cap
    assert late and all(150.0 <= gap <= 300.5 for gap in late)
    # Capped at 5 min with jitter: between 120 and 240 dials per 10 h, never a storm.
    assert 100 <= len(dial_times) <= 260
    assert pm.knows("fleet-1")  # a static peer is never forgotten


def test_discovered_peer_is_forgotten_after_repeated_failures() -> None:
    pm = manager(PeerPolicy(forget_after_failures=3, backoff_jitter=0.0))
    pm.add_peer("mdns-1", shards=[0])
    now = 0.0
    failures = 0
    while pm.knows("mdns-1") and now < HOUR:
        for peer in dials(pm.tick(now)):
            pm.dial_failed(peer, now)
            failures += 1
        now += 1.0
    assert not pm.knows("mdns-1") and failures == 3


def test_success_resets_backoff() -> None:
    pm = manager(PeerPolicy(backoff_jitter=0.0, offline_redial=None))  # the backoff alone
    pm.add_peer("a", shards=[0], static=True)
    for t in range(6):
        for peer in dials(pm.tick(1000.0 * t)):
            pm.dial_failed(peer, 1000.0 * t)
    assert pm.next_dial_at("a") == 5000.0 + 32.0
    assert dials(pm.tick(5040.0)) == ["a"]
    pm.dial_succeeded("a", 5040.0)
    pm.disconnected("a", 5050.0)
    assert dials(pm.tick(5050.5)) == []  # reconnect delay
    assert dials(pm.tick(5051.0)) == ["a"]
    pm.dial_failed("a", 5051.0)
    assert pm.next_dial_at("a") == 5052.0  # back to the base delay


# --- no dial storms -----------------------------------------------------------------------


def test_never_more_than_n_dials_in_flight() -> None:
    policy = PeerPolicy(max_dials_in_flight=3, max_dials_per_interval=100)
    pm = manager(policy)
    for i in range(100):
        pm.add_peer(f"p{i:03}", shards=[0, 1])
    assert len(dials(pm.tick(0.0))) == 3
    assert dials(pm.tick(0.1)) == []
    assert pm.dials_in_flight() == 3
    pm.dial_failed("p000", 0.2)
    assert len(dials(pm.tick(0.3))) == 1
    assert pm.dials_in_flight() == 3


def test_dials_per_interval_are_limited() -> None:
    policy = PeerPolicy(max_dials_in_flight=5, max_dials_per_interval=10, dial_interval=10.0)
    pm = manager(policy)
    for i in range(100):
        pm.add_peer(f"p{i:03}", shards=[0])
    started: list[float] = []
    now = 0.0
    while now < 60.0:
        for peer in dials(pm.tick(now)):
            started.append(now)
            pm.dial_failed(peer, now)  # fails at once: only the interval limit holds us back
        now += 0.25
    for t in started:
        assert sum(1 for s in started if t <= s < t + 10.0) <= 10
    assert len(started) >= 50


def test_network_return_with_many_known_peers_is_gradual() -> None:
    pm = manager(PeerPolicy(max_dials_in_flight=5, relay_peers_per_shard=6))
    for i in range(200):
        pm.add_peer(f"p{i:03}", shards=[0, 1])
    first = dials(pm.tick(0.0))
    assert len(first) == 5


def test_stale_dial_times_out() -> None:
    pm = manager(PeerPolicy(dial_timeout=30.0, backoff_jitter=0.0))
    pm.add_peer("a", shards=[0], static=True)
    assert dials(pm.tick(0.0)) == ["a"]
    assert dials(pm.tick(29.0)) == []
    assert pm.dials_in_flight() == 1
    pm.tick(30.0)
    assert pm.dials_in_flight() == 0
    assert pm.next_dial_at("a") == 31.0


# --- targets ------------------------------------------------------------------------------


def test_stops_dialling_when_every_shard_has_its_target() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=2, service_targets={}), shards=(0, 1))
    for i in range(4):
        pm.add_peer(f"zero{i}", shards=[0])
        pm.add_peer(f"one{i}", shards=[1])
    first = dials(pm.tick(0.0))
    assert sorted(first) == ["one0", "one1", "zero0", "zero1"]
    for peer in first:
        pm.dial_succeeded(peer, 0.5)
    assert dials(pm.tick(1.0)) == []
    assert pm.peers_per_shard() == {0: 2, 1: 2}
    assert pm.peers_for_shard(0) == frozenset({"zero0", "zero1"})
    pm.disconnected("zero0", 2.0)
    again = dials(pm.tick(5.0))
    assert len(again) == 1 and again[0].startswith("zero")


def test_a_peer_on_both_shards_counts_for_both() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=1, service_targets={}))
    pm.add_peer("both", shards=[0, 1])
    pm.add_peer("zero", shards=[0])
    pm.add_peer("one", shards=[1])
    # "both" sorts first and covers both deficits, so it is the only dial.
    assert dials(pm.tick(0.0)) == ["both"]


def test_service_targets_are_dialled() -> None:
    policy = PeerPolicy(
        relay_peers_per_shard=0, service_targets={Service.STORE: 1, Service.FILTER: 2}
    )
    pm = manager(policy)
    pm.add_peer("relay-only", services=[Service.RELAY], shards=[0])
    pm.add_peer("store-a", services=[Service.STORE])
    pm.add_peer("store-b", services=[Service.STORE])
    pm.add_peer("filter-a", services=[Service.FILTER])
    pm.add_peer("filter-b", services=[Service.FILTER, Service.STORE])
    planned = dials(pm.tick(0.0))
    assert "relay-only" not in planned
    assert "filter-a" in planned and "filter-b" in planned
    assert len(planned) == 2  # filter-b also covers the store target


def test_unknown_shard_relay_peer_is_tried_once_then_counted_by_its_metadata() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=1, service_targets={}), shards=(0,))
    pm.add_peer("lan")  # mDNS: relay, shards unknown until metadata arrives
    assert dials(pm.tick(0.0)) == ["lan"]
    pm.dial_succeeded("lan", 0.1)
    assert pm.peers_for_shard(0) == frozenset()
    pm.add_peer("lan", shards=[0])
    assert pm.peers_for_shard(0) == frozenset({"lan"})


# --- scoring and service failover -----------------------------------------------------------


def test_best_service_peer_and_failover() -> None:
    pm = manager(PeerPolicy(service_failures_before_failover=2, service_cooldown=180.0))
    for peer in ("store-a", "store-b"):
        pm.add_peer(peer, services=[Service.STORE])
        pm.connected(peer, 0.0)
    pm.service_result("store-a", Service.STORE, True, 1.0)
    pm.service_result("store-a", Service.STORE, True, 1.5)
    assert pm.best_peer(Service.STORE, 2.0) == "store-a"
    pm.service_result("store-a", Service.STORE, False, 3.0)
    assert pm.best_peer(Service.STORE, 3.0) == "store-a"  # one failure is not enough
    pm.service_result("store-a", Service.STORE, False, 4.0)
    assert pm.best_peer(Service.STORE, 4.0) == "store-b"
    assert pm.service_peers(Service.STORE, 4.0) == ["store-b"]
    assert pm.best_peer(Service.STORE, 4.0 + 180.0) is not None
    assert "store-a" in pm.service_peers(Service.STORE, 4.0 + 180.0)


def test_failover_dials_a_replacement_service_peer() -> None:
    policy = PeerPolicy(relay_peers_per_shard=0, service_targets={Service.STORE: 1})
    pm = manager(policy)
    pm.add_peer("store-a", services=[Service.STORE], static=True)
    pm.add_peer("store-b", services=[Service.STORE], static=True)
    pm.connected("store-a", 0.0)
    assert dials(pm.tick(0.0)) == []
    pm.service_result("store-a", Service.STORE, False, 1.0)
    pm.service_result("store-a", Service.STORE, False, 2.0)
    assert dials(pm.tick(2.0)) == ["store-b"]
    pm.dial_succeeded("store-b", 2.5)
    assert pm.best_peer(Service.STORE, 3.0) == "store-b"


def test_no_service_peer_connected() -> None:
    pm = manager()
    pm.add_peer("store-a", services=[Service.STORE])
    assert pm.best_peer(Service.STORE, 0.0) is None


def test_score_rewards_success_and_decays() -> None:
    pm = manager(PeerPolicy(score_half_life=600.0))
    pm.add_peer("a")
    pm.add_peer("b")
    pm.dial_succeeded("a", 0.0)
    pm.dial_failed("b", 0.0)
    assert pm.score("a", 0.0) == 1.0 and pm.score("b", 0.0) == -1.0
    assert pm.score("a", 600.0) == pytest.approx(0.5)
    assert pm.score("a", 10 * HOUR) == pytest.approx(0.0, abs=1e-9)


def test_better_scored_candidates_are_dialled_first() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=1, service_targets={}, backoff_jitter=0.0))
    pm.add_peer("a", shards=[0], static=True)
    pm.add_peer("b", shards=[0], static=True)
    pm.dial_succeeded("b", 0.0)
    pm.disconnected("b", 0.0)
    assert dials(pm.tick(10.0)) == ["b"]


# --- cluster check --------------------------------------------------------------------------


def test_wrong_cluster_peer_is_disconnected_and_never_redialled() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=1, service_targets={}))
    pm.add_peer("foreign", shards=[0], static=True)
    assert dials(pm.tick(0.0)) == ["foreign"]
    pm.dial_succeeded("foreign", 0.1)
    assert pm.cluster_mismatch("foreign") == [Disconnect("foreign", "wrong cluster")]
    assert pm.is_banned("foreign")
    pm.disconnected("foreign", 0.2)
    pm.clear_backoffs()
    for t in range(0, 7200, 5):
        assert dials(pm.tick(float(t))) == []
    # It dials us instead: dropped again at once.
    assert pm.connected("foreign", 7200.0) == [Disconnect("foreign", "wrong cluster")]
    assert pm.connected_peers() == frozenset()


def test_mismatch_during_dial() -> None:
    pm = manager()
    pm.add_peer("foreign", shards=[0])
    pm.tick(0.0)
    assert pm.cluster_mismatch("foreign") == []
    assert pm.dial_succeeded("foreign", 0.1) == [Disconnect("foreign", "wrong cluster")]
    assert pm.dials_in_flight() == 0


# --- resets and pruning ---------------------------------------------------------------------


def test_clear_backoffs_allows_immediate_redial() -> None:
    pm = manager(PeerPolicy(backoff_jitter=0.0, relay_peers_per_shard=1, service_targets={}))
    pm.add_peer("a", shards=[0], static=True)
    now = 0.0
    for _ in range(10):
        for peer in dials(pm.tick(now)):
            pm.dial_failed(peer, now)
        now = pm.next_dial_at("a") or now
    assert pm.next_dial_at("a") is not None and pm.next_dial_at("a") > now - 1  # in backoff
    assert dials(pm.tick(now - 1)) == []
    pm.clear_backoffs()
    assert dials(pm.tick(now - 1)) == ["a"]


def test_disconnect_all() -> None:
    pm = manager()
    for peer in ("a", "b"):
        pm.add_peer(peer, shards=[0])
        pm.connected(peer, 0.0)
    pm.add_peer("c", shards=[0])
    pm.tick(0.0)
    actions = pm.disconnect_all("sleep")
    assert sorted(a.peer for a in actions) == ["a", "b"]
    assert all(isinstance(a, Disconnect) and a.reason == "sleep" for a in actions)
    assert pm.connected_peers() == frozenset() and pm.dials_in_flight() == 0


def test_prunes_unneeded_peers_above_max_connections() -> None:
    policy = PeerPolicy(
        max_connections=4, relay_peers_per_shard=2, service_targets={Service.STORE: 1}
    )
    pm = manager(policy, shards=(0,))
    pm.add_peer("store", services=[Service.STORE])
    pm.connected("store", 0.0)
    for i in range(5):
        pm.add_peer(f"r{i}", shards=[0])
        pm.connected(f"r{i}", 0.0)
    pm.add_peer("fleet", shards=[0], static=True)
    pm.connected("fleet", 0.0)
    pm.service_result("r0", Service.RELAY, True, 0.0)
    actions = pm.tick(1.0)
    pruned = [a.peer for a in actions if isinstance(a, Disconnect)]
    assert len(pruned) == 3
    assert "store" not in pruned and "fleet" not in pruned and "r0" not in pruned
    assert len(pm.connected_peers()) == 4


def test_no_dials_at_max_connections() -> None:
    pm = manager(PeerPolicy(max_connections=2))
    for peer in ("a", "b"):
        pm.connected(peer, 0.0)
    pm.add_peer("c", shards=[0])
    assert dials(pm.tick(0.0)) == []


def test_bad_policies() -> None:
    with pytest.raises(ValueError):
        PeerPolicy(max_dials_in_flight=0)
    with pytest.raises(ValueError):
        PeerPolicy(backoff_jitter=1.0)
    with pytest.raises(ValueError):
        PeerPolicy(backoff_base=10.0, backoff_cap=1.0)


# --- invariants under random event sequences ---------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["tick", "ok", "fail", "drop", "inbound", "mismatch", "svc_fail", "clear"]),
        st.integers(0, 29),
        st.floats(0.0, 20.0),
    ),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(events=EVENTS, seed=st.integers(0, 2**32))
def test_invariants_hold_under_any_event_order(
    events: list[tuple[str, int, float]], seed: int
) -> None:
    policy = PeerPolicy(max_dials_in_flight=4, max_dials_per_interval=7, dial_interval=10.0)
    pm = PeerManager((0, 1), random.Random(seed), policy)
    for i in range(30):
        pm.add_peer(f"p{i:02}", services=[Service.RELAY, Service.STORE], shards=[i % 2])
    banned: set[str] = set()
    starts: list[float] = []
    now = 0.0
    for kind, index, step in events:
        now += step
        peer = f"p{index:02}"
        if kind == "tick":
            for d in dials(pm.tick(now)):
                assert d not in banned
                starts.append(now)
        elif kind == "ok":
            pm.dial_succeeded(peer, now)
        elif kind == "fail":
            pm.dial_failed(peer, now)
        elif kind == "drop":
            pm.disconnected(peer, now)
        elif kind == "inbound":
            pm.connected(peer, now)
        elif kind == "mismatch":
            pm.cluster_mismatch(peer)
            banned.add(peer)
        elif kind == "svc_fail":
            pm.service_result(peer, Service.STORE, False, now)
        else:
            pm.clear_backoffs()
        assert pm.dials_in_flight() <= policy.max_dials_in_flight
        assert not (pm.connected_peers() & banned)
    for t in starts:
        assert sum(1 for s in starts if t <= s < t + policy.dial_interval) <= 7


def test_a_peer_that_drops_every_connection_at_once_backs_off() -> None:
    pm = manager(PeerPolicy(backoff_jitter=0.0, reconnect_delay=1.0, flap_window=5.0))
    pm.add_peer("a", shards=[0], static=True)
    now, dial_times = 0.0, []
    while now < 60.0:
        if dials(pm.tick(now)):
            dial_times.append(now)
            pm.dial_succeeded("a", now)
            pm.disconnected("a", now + 0.1)  # accepted, then closed at once
        now += 0.5
    # Each gap is the backoff for one more failure (1, 2, 4 s, rounded up to the next 0.5 s
    # tick after the 0.1 s the connection lasted): not a dial every second; and as it is our
    # only peer, never longer than the offline interval (6 s) either.
    gaps = [b - a for a, b in itertools.pairwise(dial_times)]
    assert gaps[:4] == [1.5, 2.5, 4.5, 6.5] and set(gaps[3:]) == {6.5}


def test_a_long_connection_that_ends_redials_after_the_reconnect_delay() -> None:
    pm = manager(PeerPolicy(backoff_jitter=0.0, reconnect_delay=1.0, flap_window=5.0))
    pm.add_peer("a", shards=[0], static=True)
    assert dials(pm.tick(0.0)) == ["a"]
    pm.dial_succeeded("a", 0.0)
    pm.disconnected("a", 100.0)
    assert pm.next_dial_at("a") == 101.0


def test_a_dial_expired_by_the_core_is_not_counted_again_by_the_driver() -> None:
    """The driver asks `dialing` before it reports a failure: the core's safety-net timeout
    equals the driver's, and counting one dial twice would double its backoff."""
    pm = manager(PeerPolicy(dial_timeout=30.0, backoff_jitter=0.0))
    pm.add_peer("a", shards=[0], static=True)
    assert dials(pm.tick(0.0)) == ["a"] and pm.dialing("a")
    pm.tick(30.0)
    assert not pm.dialing("a") and pm.next_dial_at("a") == 31.0


# --- offline: no peer at all -----------------------------------------------------------------


Spans = dict[str, list[tuple[float, float]]]


def _outage(seed: int, *, outage: float, slow_dials: float) -> tuple[Spans, float]:
    """Two fleet nodes, connected for a minute, then gone for `outage` seconds (a restart).
    The driver ticks every second (and at once after a disconnect); a failed dial ends at once
    (connection refused) or, a `slow_dials` share of the time, after the driver's 30 s limit
    (an unreachable host). Returns each peer's dials as (start, end), and when we were
    connected again after the nodes came back."""
    rng = random.Random(seed)
    pm = manager(PeerPolicy(), shards=(0,), seed=seed)
    for peer in ("node-1", "node-2"):
        pm.add_peer(peer, services=[Service.RELAY, Service.STORE], shards=[0], static=True)
    for peer in dials(pm.tick(0.0)):
        pm.dial_succeeded(peer, 0.0)
    down_at, up_at = 60.0, 60.0 + outage
    for peer in ("node-1", "node-2"):
        pm.disconnected(peer, down_at)
    spans: Spans = {"node-1": [], "node-2": []}
    ending: dict[str, float] = {}
    now = down_at
    while not pm.connected_peers():
        for peer, end in list(ending.items()):
            if end <= now:
                del ending[peer]
                if end >= up_at:
                    pm.dial_succeeded(peer, end)
                else:
                    pm.dial_failed(peer, end)
        for peer in dials(pm.tick(now)):
            assert peer not in ending, "a second dial to a peer whose dial is under way"
            took = 30.0 if now < up_at and rng.random() < slow_dials else 0.05
            end = now + took if now + took < up_at or took < 1 else up_at + 0.05
            ending[peer] = end
            spans[peer].append((now, end))
        now = round(now + 1.0, 6)
    return spans, now - up_at


@pytest.mark.parametrize("outage", [44.0, 600.0, HOUR])
def test_while_offline_known_peers_are_redialled_at_most_ten_seconds_apart(outage: float) -> None:
    """The rule of issue 15 item 2: with no peer at all, configured and known peers are
    redialled at a short, jittered interval: never more than 10 s between the end of one
    dial and the start of the next, never two dials to one peer at once, whatever the
    backoff of the failures so far; so we are back within 10 s of the nodes' return."""
    for seed in range(5):
        spans, back_after = _outage(seed, outage=outage, slow_dials=0.2)
        for peer, dial_spans in spans.items():
            gaps = [start - end for (_, end), (start, _) in itertools.pairwise(dial_spans)]
            assert all(gap >= 0 for gap in gaps), f"{peer}: overlapping dials"
            assert max(gaps) <= 10.0, f"{peer}: {max(gaps)} s between dials"
            if len(gaps) >= 10:
                assert len({round(gap, 1) for gap in gaps}) > 3, "jittered, not in lockstep"
        assert back_after <= 10.0


def test_going_offline_brings_a_long_backoff_in() -> None:
    """A peer that failed for an hour while we had another one waits minutes between dials;
    once the other one goes too, it is dialled within the offline interval."""
    pm = manager(PeerPolicy(relay_peers_per_shard=2), shards=(0,))
    pm.add_peer("good", shards=[0], static=True)
    pm.add_peer("flaky", shards=[0], static=True)
    now = failed_at = 0.0
    pm.connected("good", now)
    while now < HOUR:
        for peer in dials(pm.tick(now)):
            pm.dial_failed(peer, now)
            failed_at = now
        now += 1.0
    assert (pm.next_dial_at("flaky") or 0) - failed_at >= 150.0  # a long backoff while online
    assert pm.next_redial_at(now) is None  # online: nothing to show
    pm.disconnected("good", now)
    assert pm.offline()
    redial_at = pm.next_redial_at(now)
    assert redial_at is not None and redial_at - now <= 6.0
    first = now
    while not dials(pm.tick(now)):
        now += 1.0
    assert now - first <= 7.0


def test_redial_now_dials_every_known_peer_at_once_but_none_twice() -> None:
    pm = manager(PeerPolicy(relay_peers_per_shard=3), shards=(0,))
    for peer in ("a", "b", "c"):
        pm.add_peer(peer, shards=[0], static=True)
    pm.add_peer("other-cluster", shards=[0], static=True)
    pm.cluster_mismatch("other-cluster")
    assert sorted(dials(pm.tick(0.0))) == ["a", "b", "c"]
    pm.dial_failed("a", 1.0)
    pm.dial_failed("b", 1.0)  # "c" is still being dialled (a slow link)
    assert dials(pm.tick(1.5)) == []  # backoff
    assert sorted(dials(pm.redial_now(2.0))) == ["a", "b"]
    assert pm.dials_in_flight() == 3
    assert dials(pm.redial_now(2.1)) == []  # all under way: nothing doubled
    assert pm.known_peers(2.1) == 3


def test_redial_now_keeps_the_dial_limits() -> None:
    pm = manager(PeerPolicy(max_dials_in_flight=5, max_dials_per_interval=10), shards=(0,))
    for i in range(50):
        pm.add_peer(f"p{i:02}", shards=[0])
    assert len(dials(pm.redial_now(0.0))) == 5


def test_next_redial_at_counts_only_peers_we_would_dial() -> None:
    pm = manager(PeerPolicy(backoff_jitter=0.0), shards=(0,))
    assert pm.next_redial_at(0.0) is None and pm.known_peers(0.0) == 0
    pm.connected("inbound-only", 0.0)  # no services known: never dialled by us
    pm.disconnected("inbound-only", 1.0)
    assert pm.next_redial_at(1.0) is None and pm.known_peers(1.0) == 0
    pm.add_peer("fleet", shards=[0], static=True)
    assert dials(pm.tick(1.0)) == ["fleet"]
    assert pm.next_redial_at(1.0) is None  # being dialled
    pm.dial_failed("fleet", 2.0)
    assert pm.next_redial_at(2.0) == 3.0


def test_offline_redial_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PeerPolicy(offline_redial=0.0)
