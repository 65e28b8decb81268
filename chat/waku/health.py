"""The health core: is chinwag online, did the machine sleep, did the network change?

Sans-IO. A driver calls `tick(now)` on a steady beat, reports what the peer manager sees
(`observe`), the local addresses (`addresses`), keep-alive ping rounds (`ping_round`), the end
of a reset (`reset_done`) and of a catch-up (`catch_up_done`); it carries out the actions
returned. Time is seconds from a clock that keeps running while the machine is suspended
(wall time or CLOCK_BOOTTIME; Linux's CLOCK_MONOTONIC stops during suspend and would hide it).

Sleep: ticks normally arrive every `tick_interval`; a gap longer than `sleep_after_ticks` ticks
means the process was not running (laptop lid, SIGSTOP, a frozen VM). Every connection is then
suspect: the core enters SLEEPING and asks for a reset (drop connections, clear dial
backoffs) and a catch-up query. Network change (the set of local addresses differs) and a dead
network (every keep-alive ping failed `dead_ping_rounds` rounds in a row) ask for the same reset
without the SLEEPING state. After any reset, and after losing every peer (OFFLINE), nothing is
assumed connected until the next observation, and the node is not ONLINE again until a
catch-up has succeeded.

Relay mesh: a node built with `require_mesh` (a chat client) is not ONLINE until every shard
has at least one peer in its gossipsub mesh, not merely a connected peer that serves the
shard. Until the mesh forms, what we publish reaches no one who forwards it, and what others
publish is not forwarded to us, so "online" would promise what it cannot keep. A subscribed
peer that pruned us because its own mesh is full (a busy service node) counts too: it takes
what we publish and gossips to us (the driver reports `Router.serving_peers`).

States and what moves them are the table below; `HealthChanged` is emitted whenever the
summary (state, peers per shard, service reachability, catch-up) changes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chat.waku.peers import Service


class HealthState(enum.Enum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    SLEEPING = "sleeping"


class Trigger(enum.Enum):
    SLEEP_DETECTED = "sleep detected"
    RESET_DONE = "reset done"
    NO_PEERS = "no peers"
    PARTIAL = "partial connectivity"
    FULL = "full connectivity"


TRANSITIONS: dict[HealthState, dict[Trigger, HealthState]] = {
    HealthState.OFFLINE: {
        Trigger.SLEEP_DETECTED: HealthState.SLEEPING,
        Trigger.RESET_DONE: HealthState.OFFLINE,
        Trigger.NO_PEERS: HealthState.OFFLINE,
        Trigger.PARTIAL: HealthState.DEGRADED,
        Trigger.FULL: HealthState.ONLINE,
    },
    HealthState.DEGRADED: {
        Trigger.SLEEP_DETECTED: HealthState.SLEEPING,
        Trigger.RESET_DONE: HealthState.DEGRADED,
        Trigger.NO_PEERS: HealthState.OFFLINE,
        Trigger.PARTIAL: HealthState.DEGRADED,
        Trigger.FULL: HealthState.ONLINE,
    },
    HealthState.ONLINE: {
        Trigger.SLEEP_DETECTED: HealthState.SLEEPING,
        Trigger.RESET_DONE: HealthState.ONLINE,
        Trigger.NO_PEERS: HealthState.OFFLINE,
        Trigger.PARTIAL: HealthState.DEGRADED,
        Trigger.FULL: HealthState.ONLINE,
    },
    # While the reset after a sleep runs, observations describe connections from before
    # the sleep: they do not move the state. Only the end of the reset does.
    HealthState.SLEEPING: {
        Trigger.SLEEP_DETECTED: HealthState.SLEEPING,
        Trigger.RESET_DONE: HealthState.OFFLINE,
        Trigger.NO_PEERS: HealthState.SLEEPING,
        Trigger.PARTIAL: HealthState.SLEEPING,
        Trigger.FULL: HealthState.SLEEPING,
    },
}


@dataclass(frozen=True, slots=True)
class HealthSummary:
    state: HealthState
    peers_per_shard: tuple[tuple[int, int], ...]
    services: tuple[tuple[Service, bool], ...]
    """Reachability of each required service."""
    last_catch_up: float | None
    """When the last catch-up query succeeded (the health clock), None if never."""
    catch_up_pending: bool
    mesh_per_shard: tuple[tuple[int, int], ...] = ()
    """Relay peers serving each shard: the mesh, plus peers that pruned us from a full mesh
    (`Router.serving_peers`); empty when the monitor does not require a mesh."""

    def shard_peers(self) -> dict[int, int]:
        return dict(self.peers_per_shard)

    def reachable(self) -> dict[Service, bool]:
        return dict(self.services)


@dataclass(frozen=True, slots=True)
class ResetConnections:
    reason: str


@dataclass(frozen=True, slots=True)
class ClearBackoffs:
    pass


@dataclass(frozen=True, slots=True)
class RunCatchUp:
    since: float | None
    """Last successful catch-up; query the store from a little before it (None: full window)."""


@dataclass(frozen=True, slots=True)
class PingPeers:
    pass


@dataclass(frozen=True, slots=True)
class HealthChanged:
    summary: HealthSummary


HealthAction = ResetConnections | ClearBackoffs | RunCatchUp | PingPeers | HealthChanged


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    tick_interval: float = 2.0
    sleep_after_ticks: int = 5
    """A gap over this many tick intervals (10 s by default) means we were asleep."""
    reset_timeout: float = 15.0
    """Leave SLEEPING even if the driver never confirms the reset."""
    keepalive_interval: float = 10.0
    dead_ping_rounds: int = 2
    catch_up_retry: float = 10.0
    min_peers_per_shard: int = 1

    def __post_init__(self) -> None:
        if self.tick_interval <= 0 or self.sleep_after_ticks < 2 or self.dead_ping_rounds < 1:
            raise ValueError("tick_interval > 0, sleep_after_ticks >= 2, dead_ping_rounds >= 1")

    @property
    def sleep_gap(self) -> float:
        return self.tick_interval * self.sleep_after_ticks


class HealthMonitor:
    def __init__(
        self,
        shards: Iterable[int],
        required_services: Iterable[Service] = (Service.STORE,),
        policy: HealthPolicy | None = None,
        *,
        require_mesh: bool = False,
    ) -> None:
        self.policy = policy or HealthPolicy()
        self._shards = tuple(sorted(set(shards)))
        self._required = tuple(sorted(set(required_services), key=lambda s: s.value))
        self.require_mesh = require_mesh
        self.state = HealthState.OFFLINE
        self._peers: dict[int, int] = {}
        self._mesh: dict[int, int] = {}
        self._services: dict[Service, bool] = {}
        self._last_tick: float | None = None
        self._last_ping: float | None = None
        self._addresses: frozenset[str] | None = None
        self._dead_rounds = 0
        self._reset_at: float | None = None
        self._catch_up_pending = True  # a fresh start needs one too
        self._catch_up_running = False
        self._catch_up_retry_at = 0.0
        self.last_catch_up: float | None = None
        self._emitted: HealthSummary | None = None
        self.sleeps_detected = 0
        self.resets = 0

    # --- inputs -----------------------------------------------------------------------------

    def tick(self, now: float) -> list[HealthAction]:
        actions: list[HealthAction] = []
        last = self._last_tick
        self._last_tick = now
        if last is not None and now - last > self.policy.sleep_gap:
            self.sleeps_detected += 1
            self._fire(Trigger.SLEEP_DETECTED)
            self._reset_at = now
            actions.extend(self._reset("woke from sleep"))
        elif (
            self.state is HealthState.SLEEPING
            and self._reset_at is not None
            and now - self._reset_at >= self.policy.reset_timeout
        ):
            self._end_reset()
        if self._last_ping is None or now - self._last_ping >= self.policy.keepalive_interval:
            self._last_ping = now
            actions.append(PingPeers())
        return self._finish(now, actions)

    def observe(
        self,
        now: float,
        peers_per_shard: Mapping[int, int],
        services: Mapping[Service, bool],
        mesh_per_shard: Mapping[int, int] | None = None,
    ) -> list[HealthAction]:
        """What the peer manager sees now: relay peers per shard, usable service peers; and
        what relay sees: mesh peers per shard (None: unchanged since the last observation)."""
        self._peers = {s: peers_per_shard.get(s, 0) for s in self._shards}
        self._services = {svc: services.get(svc, False) for svc in self._required}
        if mesh_per_shard is not None:
            self._mesh = {s: mesh_per_shard.get(s, 0) for s in self._shards}
        self._evaluate()
        return self._finish(now, [])

    def addresses(self, now: float, local_addresses: Iterable[str]) -> list[HealthAction]:
        """The machine's current non-loopback addresses; a change means a new network."""
        current = frozenset(local_addresses)
        previous, self._addresses = self._addresses, current
        if previous is None or previous == current:
            return self._finish(now, [])
        return self._finish(now, self._reset("network changed"))

    def ping_round(self, now: float, succeeded: int, failed: int) -> list[HealthAction]:
        """One keep-alive round; rounds where every ping failed in a row mean a dead network."""
        if succeeded == 0 and failed > 0:
            self._dead_rounds += 1
        else:
            self._dead_rounds = 0
        if self._dead_rounds >= self.policy.dead_ping_rounds:
            self._dead_rounds = 0
            return self._finish(now, self._reset("every keep-alive ping failed"))
        return self._finish(now, [])

    def reset_done(self, now: float) -> list[HealthAction]:
        self._end_reset()
        return self._finish(now, [])

    def catch_up_done(self, now: float, ok: bool) -> list[HealthAction]:
        self._catch_up_running = False
        if ok:
            self._catch_up_pending = False
            self.last_catch_up = now
        else:
            self._catch_up_retry_at = now + self.policy.catch_up_retry
        self._evaluate()
        return self._finish(now, [])

    # --- outputs ----------------------------------------------------------------------------

    def summary(self) -> HealthSummary:
        return HealthSummary(
            state=self.state,
            peers_per_shard=tuple((s, self._peers.get(s, 0)) for s in self._shards),
            services=tuple((svc, self._services.get(svc, False)) for svc in self._required),
            last_catch_up=self.last_catch_up,
            catch_up_pending=self._catch_up_pending,
            mesh_per_shard=tuple((s, self._mesh.get(s, 0)) for s in self._shards)
            if self.require_mesh
            else (),
        )

    # --- internals --------------------------------------------------------------------------

    def _fire(self, trigger: Trigger) -> None:
        self.state = TRANSITIONS[self.state][trigger]

    def _end_reset(self) -> None:
        if self.state is HealthState.SLEEPING:
            # Observations made while asleep described connections the reset has dropped.
            self._peers = {}
            self._mesh = {}
            self._services = {}
        self._fire(Trigger.RESET_DONE)
        self._reset_at = None

    def _reset(self, reason: str) -> list[HealthAction]:
        self.resets += 1
        # Whatever was connected before is gone or suspect until the next observation.
        self._peers = {}
        self._mesh = {}
        self._services = {}
        self._dead_rounds = 0
        self._catch_up_pending = True
        self._catch_up_running = False
        self._catch_up_retry_at = 0.0
        self._evaluate()
        return [ResetConnections(reason), ClearBackoffs()]

    def _evaluate(self) -> None:
        reachable = [svc for svc in self._required if self._services.get(svc, False)]
        with_peers = [s for s in self._shards if self._peers.get(s, 0) > 0]
        if not reachable and not with_peers:
            if self.state in (HealthState.ONLINE, HealthState.DEGRADED):
                # Messages sent while we had no peer reached nobody here: catch up on return.
                self._catch_up_pending = True
                self._catch_up_retry_at = 0.0
            self._fire(Trigger.NO_PEERS)
            return
        complete = (
            len(reachable) == len(self._required)
            and all(self._peers.get(s, 0) >= self.policy.min_peers_per_shard for s in self._shards)
            and not self._catch_up_pending
            and (not self.require_mesh or all(self._mesh.get(s, 0) > 0 for s in self._shards))
        )
        self._fire(Trigger.FULL if complete else Trigger.PARTIAL)

    def _finish(self, now: float, actions: list[HealthAction]) -> list[HealthAction]:
        if (
            self._catch_up_pending
            and not self._catch_up_running
            and self.state is not HealthState.SLEEPING
            and now >= self._catch_up_retry_at
            and self._catch_up_possible()
        ):
            self._catch_up_running = True
            actions.append(RunCatchUp(self.last_catch_up))
        current = self.summary()
        if current != self._emitted:
            self._emitted = current
            actions.append(HealthChanged(current))
        return actions

    def _catch_up_possible(self) -> bool:
        if Service.STORE in self._required:
            return self._services.get(Service.STORE, False)
        # No store required (a relay-only network): the driver decides what catching up
        # means; ask once relay peers are back.
        return any(self._peers.get(s, 0) > 0 for s in self._shards)
