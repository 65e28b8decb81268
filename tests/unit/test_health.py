"""The health core with injected time: sleep detection, network change, states and summary."""

from __future__ import annotations

import random

import pytest

from chat.waku.health import (
    TRANSITIONS,
    ClearBackoffs,
    HealthAction,
    HealthChanged,
    HealthMonitor,
    HealthPolicy,
    HealthState,
    PingPeers,
    ResetConnections,
    RunCatchUp,
    Trigger,
)
from chat.waku.peers import Dial, Disconnect, PeerManager, PeerPolicy, Service

STORE_UP = {Service.STORE: True}
STORE_DOWN = {Service.STORE: False}


def states(actions: list[HealthAction]) -> list[HealthState]:
    return [a.summary.state for a in actions if isinstance(a, HealthChanged)]


def kinds(actions: list[HealthAction]) -> list[type]:
    return [type(a) for a in actions]


def online_monitor() -> tuple[HealthMonitor, float]:
    """A monitor that has ticked, seen both shards and the store, and caught up once."""
    hm = HealthMonitor(shards=(0, 1))
    now = 0.0
    hm.tick(now)
    actions = hm.observe(now, {0: 3, 1: 2}, STORE_UP)
    assert RunCatchUp(None) in actions
    hm.catch_up_done(1.0, ok=True)
    assert hm.state is HealthState.ONLINE
    return hm, 1.0


def test_transition_table_is_complete() -> None:
    for state in HealthState:
        assert set(TRANSITIONS[state]) == set(Trigger)


def test_starts_offline_and_says_so() -> None:
    hm = HealthMonitor(shards=(0, 1))
    actions = hm.tick(0.0)
    assert kinds(actions) == [PingPeers, HealthChanged]
    summary = hm.summary()
    assert summary.state is HealthState.OFFLINE
    assert summary.shard_peers() == {0: 0, 1: 0}
    assert summary.reachable() == {Service.STORE: False}
    assert summary.last_catch_up is None and summary.catch_up_pending


def test_online_needs_shards_store_and_a_catch_up() -> None:
    hm = HealthMonitor(shards=(0, 1))
    hm.tick(0.0)
    assert states(hm.observe(0.5, {0: 1}, STORE_DOWN)) == [HealthState.DEGRADED]
    assert states(hm.observe(0.6, {0: 1, 1: 1}, STORE_DOWN)) == [HealthState.DEGRADED]
    actions = hm.observe(0.7, {0: 1, 1: 1}, STORE_UP)
    assert RunCatchUp(None) in actions  # the store is there: catch up before saying online
    assert hm.state is HealthState.DEGRADED
    assert states(hm.catch_up_done(3.0, ok=True)) == [HealthState.ONLINE]
    assert hm.summary().last_catch_up == 3.0
    assert states(hm.observe(4.0, {0: 0, 1: 0}, STORE_DOWN)) == [HealthState.OFFLINE]


def test_a_client_is_online_only_with_a_relay_mesh_on_every_shard() -> None:
    hm = HealthMonitor(shards=(0, 1), require_mesh=True)
    hm.tick(0.0)
    # Connected to a peer serving both shards, store up, caught up: but no mesh yet.
    assert RunCatchUp(None) in hm.observe(0.5, {0: 1, 1: 1}, STORE_UP, {0: 0, 1: 0})
    assert states(hm.catch_up_done(0.6, ok=True)) == [HealthState.DEGRADED]
    assert hm.summary().mesh_per_shard == ((0, 0), (1, 0))
    assert states(hm.observe(0.7, {0: 1, 1: 1}, STORE_UP, {0: 1, 1: 0})) == [HealthState.DEGRADED]
    assert states(hm.observe(0.8, {0: 1, 1: 1}, STORE_UP, {0: 1, 1: 1})) == [HealthState.ONLINE]
    # An observation without mesh news keeps the last one; losing a shard's mesh degrades.
    assert hm.observe(0.9, {0: 1, 1: 1}, STORE_UP) == []
    assert states(hm.observe(1.0, {0: 1, 1: 1}, STORE_UP, {0: 1, 1: 0})) == [HealthState.DEGRADED]


def test_a_reset_forgets_the_mesh_from_before() -> None:
    hm = HealthMonitor(shards=(0,), require_mesh=True)
    hm.tick(0.0)
    hm.observe(0.1, {0: 1}, STORE_UP, {0: 1})
    hm.catch_up_done(0.2, ok=True)
    assert hm.state is HealthState.ONLINE
    hm.tick(60.0)  # slept
    hm.reset_done(60.1)
    # Peers are back and the catch-up is done, but the mesh is not re-formed yet.
    hm.observe(60.2, {0: 1}, STORE_UP)
    hm.catch_up_done(60.3, ok=True)
    assert hm.state is HealthState.DEGRADED
    assert states(hm.observe(60.4, {0: 1}, STORE_UP, {0: 1})) == [HealthState.ONLINE]


def test_without_require_mesh_the_summary_has_no_mesh() -> None:
    hm, _ = online_monitor()
    assert hm.summary().mesh_per_shard == ()


def test_summary_is_emitted_only_when_it_changes() -> None:
    hm, now = online_monitor()
    assert not [a for a in hm.observe(now, {0: 3, 1: 2}, STORE_UP) if isinstance(a, HealthChanged)]
    changed = [a for a in hm.observe(now, {0: 4, 1: 2}, STORE_UP) if isinstance(a, HealthChanged)]
    assert len(changed) == 1 and changed[0].summary.shard_peers() == {0: 4, 1: 2}
    assert changed[0].summary.state is HealthState.ONLINE


def test_regular_ticks_are_not_sleep() -> None:
    hm, _ = online_monitor()
    now = 0.0  # the last tick
    gap = hm.policy.sleep_gap
    for _ in range(1000):
        now += gap  # exactly at the bound, never over it
        actions = hm.tick(now)
        assert ResetConnections not in kinds(actions)
    assert hm.state is HealthState.ONLINE and hm.sleeps_detected == 0


def test_clock_going_backwards_is_not_sleep() -> None:
    hm, now = online_monitor()
    hm.tick(now + 1.0)
    hm.tick(now - 50.0)  # an NTP step backwards
    hm.tick(now - 48.0)
    assert hm.sleeps_detected == 0 and hm.state is HealthState.ONLINE


def test_sleep_then_recovery_passes_through_every_state() -> None:
    hm, now = online_monitor()
    for _ in range(5):
        now += 2.0
        hm.tick(now)
    now += 60.0  # SIGSTOP for a minute, or a closed lid
    woke = hm.tick(now)
    assert ResetConnections("woke from sleep") in woke and ClearBackoffs() in woke
    seen = states(woke)
    # Stale pre-sleep observations do not move the state while the reset runs.
    seen += states(hm.observe(now, {0: 3, 1: 2}, STORE_UP))
    seen += states(hm.reset_done(now + 0.1))
    seen += states(hm.observe(now + 0.5, {}, {}))
    seen += states(hm.observe(now + 1.0, {0: 1}, STORE_DOWN))
    catch_up = hm.observe(now + 1.5, {0: 2, 1: 1}, STORE_UP)
    assert RunCatchUp(since=1.0) in catch_up  # from the last successful catch-up
    seen += states(catch_up)
    seen += states(hm.catch_up_done(now + 2.5, ok=True))
    deduped = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] is not s]
    assert deduped == [
        HealthState.SLEEPING,
        HealthState.OFFLINE,
        HealthState.DEGRADED,
        HealthState.ONLINE,
    ]
    assert hm.sleeps_detected == 1
    assert hm.summary().last_catch_up == now + 2.5


def test_sleeping_ends_by_itself_if_the_reset_is_never_confirmed() -> None:
    hm, now = online_monitor()
    now += 3600.0
    hm.tick(now)
    assert hm.state is HealthState.SLEEPING
    for _ in range(7):
        now += 2.0
        hm.tick(now)
        assert hm.state is HealthState.SLEEPING
    now += 1.0  # 15 s after the wake-up
    assert states(hm.tick(now)) == [HealthState.OFFLINE]
    assert hm.sleeps_detected == 1


def test_no_catch_up_while_sleeping() -> None:
    hm, now = online_monitor()
    actions = hm.tick(now + 100.0)
    actions += hm.observe(now + 100.0, {0: 1, 1: 1}, STORE_UP)
    assert not [a for a in actions if isinstance(a, RunCatchUp)]


def test_failed_catch_up_is_retried_after_a_delay() -> None:
    hm = HealthMonitor(shards=(0,), policy=HealthPolicy(catch_up_retry=10.0))
    hm.tick(0.0)
    assert RunCatchUp(None) in hm.observe(0.0, {0: 1}, STORE_UP)
    assert not [a for a in hm.catch_up_done(1.0, ok=False) if isinstance(a, RunCatchUp)]
    assert not [a for a in hm.tick(2.0) if isinstance(a, RunCatchUp)]
    assert RunCatchUp(None) in hm.tick(11.0)
    assert hm.state is HealthState.DEGRADED
    hm.catch_up_done(12.0, ok=True)
    assert hm.state is HealthState.ONLINE


def test_network_change_resets_without_sleeping() -> None:
    hm, now = online_monitor()
    assert not hm.addresses(now, ["192.168.1.20", "fe80::1"])[:1]  # first sight: no change
    assert hm.addresses(now, ["fe80::1", "192.168.1.20"]) == []  # same set
    actions = hm.addresses(now + 1.0, ["10.0.0.7"])
    assert ResetConnections("network changed") in actions and ClearBackoffs() in actions
    assert states(actions) == [HealthState.OFFLINE]
    assert hm.summary().catch_up_pending
    hm.observe(now + 2.0, {0: 1, 1: 1}, STORE_UP)
    hm.catch_up_done(now + 3.0, ok=True)
    assert hm.state is HealthState.ONLINE


def test_dead_network_after_consecutive_failed_ping_rounds() -> None:
    hm, now = online_monitor()
    assert hm.ping_round(now, succeeded=0, failed=4) == []
    assert hm.ping_round(now + 10, succeeded=1, failed=3) == []  # one answer: alive
    assert hm.ping_round(now + 20, succeeded=0, failed=4) == []
    actions = hm.ping_round(now + 30, succeeded=0, failed=4)
    assert ResetConnections("every keep-alive ping failed") in actions
    assert hm.state is HealthState.OFFLINE
    assert hm.ping_round(now + 31, succeeded=0, failed=0) == []  # nobody to ping is not death


def test_keepalive_pings_are_paced() -> None:
    hm = HealthMonitor(shards=(0,), policy=HealthPolicy(keepalive_interval=10.0))
    pings = [t for t in range(0, 60, 2) if PingPeers() in hm.tick(float(t))]
    assert pings == [0, 10, 20, 30, 40, 50]


def test_light_client_health_uses_services_only() -> None:
    required = (Service.FILTER, Service.LIGHTPUSH, Service.STORE)
    hm = HealthMonitor(shards=(), required_services=required)
    hm.tick(0.0)
    hm.observe(0.0, {}, {Service.FILTER: True})
    assert hm.state is HealthState.DEGRADED
    hm.observe(0.0, {}, dict.fromkeys(required, True))
    hm.catch_up_done(1.0, ok=True)
    assert hm.state is HealthState.ONLINE


def test_bad_policy() -> None:
    with pytest.raises(ValueError):
        HealthPolicy(sleep_after_ticks=1)


def test_peers_and_health_recover_together_after_sleep() -> None:
    """A driver loop in miniature: a fleet peer, its dial backoff, a sleep, and the way back."""
    pm = PeerManager(
        (0,),
        random.Random(3),
        # The backoff alone: the short redial interval while offline would hide what the
        # reset after a sleep clears (a peer manager with it is never deep in backoff here).
        PeerPolicy(
            relay_peers_per_shard=1,
            service_targets={Service.STORE: 1},
            backoff_cap=3600,
            offline_redial=None,
        ),
    )
    hm = HealthMonitor(shards=(0,))
    pm.add_peer("fleet", services=[Service.RELAY, Service.STORE], shards=[0], static=True)
    reachable = False
    history: list[HealthState] = []

    def step(now: float) -> None:
        for action in pm.tick(now):
            if isinstance(action, Dial):
                if reachable:
                    pm.dial_succeeded(action.peer, now)
                else:
                    pm.dial_failed(action.peer, now)
        store = pm.best_peer(Service.STORE, now) is not None
        out = hm.tick(now) + hm.observe(now, pm.peers_per_shard(), {Service.STORE: store})
        for action in out:
            if isinstance(action, ResetConnections):
                for d in pm.disconnect_all(action.reason):
                    assert isinstance(d, Disconnect)
                out += hm.reset_done(now)
            elif isinstance(action, ClearBackoffs):
                pm.clear_backoffs()
            elif isinstance(action, RunCatchUp):
                out += hm.catch_up_done(now, ok=True)
        history.extend(states(out))

    now = 0.0
    # The fleet is unreachable for two hours: backoff grows toward an hour.
    while now < 2 * 3600:
        step(now)
        now += 2.0
    assert hm.state is HealthState.OFFLINE
    assert (pm.next_dial_at("fleet") or 0) - now > 60  # deep in backoff
    # The machine sleeps; on waking the network is back. Cleared backoffs: dial at once.
    reachable = True
    now += 120.0
    step(now)
    assert hm.state is HealthState.OFFLINE and pm.next_dial_at("fleet") == 0.0
    step(now + 2.0)
    assert hm.state is HealthState.ONLINE
    assert history[-4:] == [
        HealthState.SLEEPING,
        HealthState.OFFLINE,
        HealthState.DEGRADED,
        HealthState.ONLINE,
    ]


def test_losing_every_peer_means_a_catch_up_when_they_return() -> None:
    hm, now = online_monitor()
    assert states(hm.observe(now + 1, {0: 0, 1: 0}, STORE_DOWN)) == [HealthState.OFFLINE]
    assert hm.summary().catch_up_pending
    actions = hm.observe(now + 5, {0: 1, 1: 1}, STORE_UP)
    assert RunCatchUp(now) in actions and states(actions) == [HealthState.DEGRADED]
    assert states(hm.catch_up_done(now + 6, ok=True)) == [HealthState.ONLINE]
