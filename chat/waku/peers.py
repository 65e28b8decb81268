"""The peer manager core: whom to dial, when to give up, which service peer to use.

Sans-IO. A driver feeds it events (a dial succeeded or failed, a peer connected or went away,
a store query to a peer worked or not, metadata showed a peer on another cluster, the clock
ticked) and carries out the actions it returns (`Dial`, `Disconnect`). Time is injected as
seconds (any monotonic-ish float), and jitter comes from an injected `random.Random`, so tests
run hours of backoff in microseconds and reproduce exactly.

Policy, in short:
- keep `relay_peers_per_shard` relay peers on every shard we are on, and `service_targets`
  peers for each service (store, filter, light push);
- redial a failed peer after an exponential backoff (base × factor^(failures−1), capped) with
  jitter drawn from [1 − jitter, 1] of that delay, so peers that failed together do not all
  come back at the same instant;
- but while no peer at all is connected, every known peer is redialled at most
  `offline_redial` (jittered the same way) after its last dial or connection ended, whatever
  its backoff: the backoff protects peers from us when we have others, and an offline node
  has nothing to protect, so it should find the network again within seconds of its return
  (and `redial_now` dials at once when the user asks);
- never more than `max_dials_in_flight` dials at once nor `max_dials_per_interval` dials per
  `dial_interval`: no dial storms when the network comes back;
- rank peers by a score of recent successes and failures that decays with a half-life;
- a service peer that fails `service_failures_before_failover` requests in a row is set aside
  for `service_cooldown` and another one is used (and dialled if needed);
- a peer whose metadata shows another cluster is disconnected and never dialled again.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PeerId = str
"""A peer's id in its base58 text form: what the driver uses to name a libp2p peer."""


class Service(enum.Enum):
    RELAY = "relay"
    STORE = "store"
    FILTER = "filter"
    LIGHTPUSH = "lightpush"


@dataclass(frozen=True, slots=True)
class Dial:
    peer: PeerId


@dataclass(frozen=True, slots=True)
class Disconnect:
    peer: PeerId
    reason: str


Action = Dial | Disconnect


def _default_service_targets() -> dict[Service, int]:
    return {Service.STORE: 1, Service.FILTER: 2, Service.LIGHTPUSH: 1}


@dataclass(frozen=True, slots=True)
class PeerPolicy:
    relay_peers_per_shard: int = 6
    """gossipsub's D: a full mesh on each shard when that many peers exist."""
    service_targets: Mapping[Service, int] = field(default_factory=_default_service_targets)
    max_connections: int = 50
    max_dials_in_flight: int = 5
    max_dials_per_interval: int = 10
    dial_interval: float = 10.0
    dial_timeout: float = 30.0
    """A dial with no result after this long counts as failed (a lost driver event)."""
    backoff_base: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 300.0
    backoff_jitter: float = 0.5
    offline_redial: float | None = 6.0
    """While no peer at all is connected, a known peer is redialled at most this long (less
    jitter: 3-6 s by default) after its last dial or connection ended. With the driver's 1 s
    tick no peer waits more than 7 s between dials while offline, so a node that returns is
    found again well within 10 s (a connection, metadata, the relay mesh and a catch-up
    follow). None: backoff only."""
    reconnect_delay: float = 1.0
    """Wait after a disconnect before redialling, so a flapping peer cannot spin us."""
    flap_window: float = 5.0
    """A connection that closes sooner than this after opening counts as a failed dial: a peer
    that accepts and drops at once (wrong cluster, overloaded, half-dead) backs off too."""
    forget_after_failures: int = 5
    """A discovered (non-static) peer is forgotten after this many dial failures in a row."""
    service_failures_before_failover: int = 2
    service_cooldown: float = 180.0
    score_half_life: float = 600.0

    def __post_init__(self) -> None:
        if self.max_dials_in_flight < 1 or self.max_dials_per_interval < 1:
            raise ValueError("dial limits must be at least 1")
        if not 0.0 <= self.backoff_jitter < 1.0:
            raise ValueError("backoff_jitter must be in [0, 1)")
        if (
            self.backoff_base <= 0
            or self.backoff_factor < 1
            or self.backoff_cap < self.backoff_base
        ):
            raise ValueError("backoff needs base > 0, factor >= 1 and cap >= base")
        if self.offline_redial is not None and self.offline_redial <= 0:
            raise ValueError("offline_redial must be positive (or None)")


@dataclass(slots=True)
class _Peer:
    id: PeerId
    services: frozenset[Service]
    shards: frozenset[int] | None
    """None until we learn the peer's shards (from metadata, ENR or a fleet file)."""
    static: bool
    connected: bool = False
    connected_at: float | None = None
    dialing_since: float | None = None
    failures: int = 0
    next_dial_at: float = 0.0
    offline_dial_at: float = 0.0
    """When the peer may be dialled again while we have no peer at all (offline_redial)."""
    banned: bool = False
    score: float = 0.0
    score_at: float = 0.0
    service_failures: dict[Service, int] = field(default_factory=dict)
    cooldown_until: dict[Service, float] = field(default_factory=dict)

    def serves(self, service: Service) -> bool:
        return service in self.services

    def on_shard(self, shard: int) -> bool:
        return self.shards is not None and shard in self.shards


class PeerManager:
    def __init__(
        self,
        shards: Iterable[int],
        rng: random.Random,
        policy: PeerPolicy | None = None,
    ) -> None:
        self.policy = policy or PeerPolicy()
        self._rng = rng
        self._shards = frozenset(shards)
        self._peers: dict[PeerId, _Peer] = {}
        self._dial_starts: deque[float] = deque()
        self.dials_started = 0
        self.dials_failed = 0

    # --- knowledge --------------------------------------------------------------------------

    @property
    def shards(self) -> frozenset[int]:
        return self._shards

    def set_shards(self, shards: Iterable[int]) -> None:
        self._shards = frozenset(shards)

    def add_peer(
        self,
        peer: PeerId,
        *,
        services: Iterable[Service] = (Service.RELAY,),
        shards: Iterable[int] | None = None,
        static: bool = False,
    ) -> None:
        """Learn of a peer (fleet file, mDNS, identify, metadata); repeated calls merge."""
        known = self._peers.get(peer)
        shard_set = None if shards is None else frozenset(shards)
        if known is None:
            self._peers[peer] = _Peer(peer, frozenset(services), shard_set, static)
            return
        known.services = known.services | frozenset(services)
        if shard_set is not None:
            known.shards = shard_set
        known.static = known.static or static

    def knows(self, peer: PeerId) -> bool:
        return peer in self._peers

    def services_of(self, peer: PeerId) -> frozenset[Service]:
        p = self._peers.get(peer)
        return frozenset() if p is None else p.services

    # --- events -----------------------------------------------------------------------------

    def connected(self, peer: PeerId, now: float) -> list[Action]:
        """A connection is up, whoever opened it."""
        p = self._peers.get(peer)
        if p is None:
            p = self._peers[peer] = _Peer(peer, frozenset(), None, False)
        if p.banned:
            return [Disconnect(peer, "wrong cluster")]
        if p.dialing_since is not None:
            return self.dial_succeeded(peer, now)
        if not p.connected:
            p.connected_at = now
        p.connected = True
        return []

    def disconnected(self, peer: PeerId, now: float) -> None:
        p = self._peers.get(peer)
        if p is None:
            return
        delay = self._jittered(self.policy.reconnect_delay)
        offline_delay = delay
        if p.connected and p.connected_at is not None:
            if now - p.connected_at < self.policy.flap_window:
                p.failures += 1
                delay = max(delay, self.backoff_delay(p.failures))
                offline_delay = max(offline_delay, self._offline_delay(delay))
            else:
                p.failures = 0
        p.connected = False
        p.connected_at = None
        p.next_dial_at = max(p.next_dial_at, now + delay)
        p.offline_dial_at = max(p.offline_dial_at, now + offline_delay)

    def dial_succeeded(self, peer: PeerId, now: float) -> list[Action]:
        p = self._peers.get(peer)
        if p is None:
            return []
        p.dialing_since = None
        if p.banned:
            return [Disconnect(peer, "wrong cluster")]
        p.connected = True
        p.connected_at = now
        # Failures are forgotten only once the connection proves stable (see `disconnected`).
        p.next_dial_at = 0.0
        self._add_score(p, 1.0, now)
        return []

    def dialing(self, peer: PeerId) -> bool:
        """Whether a dial to `peer` is still counted as under way."""
        p = self._peers.get(peer)
        return p is not None and p.dialing_since is not None

    def dial_failed(self, peer: PeerId, now: float) -> None:
        p = self._peers.get(peer)
        if p is None:
            return
        p.dialing_since = None
        p.failures += 1
        self.dials_failed += 1
        self._add_score(p, -1.0, now)
        if not p.static and p.failures >= self.policy.forget_after_failures and not p.connected:
            del self._peers[peer]
            return
        delay = self.backoff_delay(p.failures)
        p.next_dial_at = now + delay
        p.offline_dial_at = now + self._offline_delay(delay)

    def service_result(self, peer: PeerId, service: Service, ok: bool, now: float) -> None:
        """The outcome of one request to `peer` for `service` (a store query, a push...)."""
        p = self._peers.get(peer)
        if p is None:
            return
        if ok:
            p.service_failures[service] = 0
            p.cooldown_until.pop(service, None)
            self._add_score(p, 1.0, now)
            return
        self._add_score(p, -1.0, now)
        count = p.service_failures.get(service, 0) + 1
        if count >= self.policy.service_failures_before_failover:
            p.cooldown_until[service] = now + self.policy.service_cooldown
            count = 0
        p.service_failures[service] = count

    def cluster_mismatch(self, peer: PeerId) -> list[Action]:
        """Metadata says the peer is on another cluster: drop it, and never dial it again."""
        p = self._peers.get(peer)
        if p is None:
            p = self._peers[peer] = _Peer(peer, frozenset(), None, False)
        p.banned = True
        p.dialing_since = None
        if p.connected:
            p.connected = False
            return [Disconnect(peer, "wrong cluster")]
        return []

    def clear_backoffs(self) -> None:
        """After sleep or a network change, old failures say nothing about the new network."""
        for p in self._peers.values():
            p.failures = 0
            p.next_dial_at = p.offline_dial_at = 0.0
            p.service_failures.clear()
            p.cooldown_until.clear()
        # The dial-rate window is kept: a reset must not become a dial storm.

    def redial_now(self, now: float) -> list[Action]:
        """The user asks to reconnect: every known peer that is neither connected nor being
        dialled is due at once (a dial under way is left to finish: never two to one peer).
        The dial limits still hold, so this cannot become a dial storm."""
        for p in self._peers.values():
            if not p.connected and p.dialing_since is None and not p.banned:
                p.next_dial_at = p.offline_dial_at = 0.0
        return self.tick(now)

    def disconnect_all(self, reason: str) -> list[Action]:
        actions: list[Action] = []
        for p in self._peers.values():
            if p.connected:
                p.connected = False
                actions.append(Disconnect(p.id, reason))
            p.dialing_since = None
        return actions

    def tick(self, now: float) -> list[Action]:
        """Expire stale dials, then dial toward the targets and prune above the maximum."""
        for p in list(self._peers.values()):
            started = p.dialing_since
            if started is not None and now - started >= self.policy.dial_timeout:
                self.dial_failed(p.id, now)
        window_start = now - self.policy.dial_interval
        while self._dial_starts and self._dial_starts[0] <= window_start:
            self._dial_starts.popleft()
        actions: list[Action] = list(self._plan_dials(now))
        actions.extend(self._plan_prune(now))
        return actions

    # --- queries ----------------------------------------------------------------------------

    def best_peer(self, service: Service, now: float) -> PeerId | None:
        """The connected peer to use for `service`: the best-scored one not set aside."""
        usable = [p for p in self._peers.values() if p.connected and self._usable(p, service, now)]
        if not usable:
            return None
        return max(usable, key=lambda p: (self._score(p, now), p.id)).id

    def service_peers(self, service: Service, now: float) -> list[PeerId]:
        """Connected usable peers for `service`, best first (for failover in order)."""
        usable = [p for p in self._peers.values() if p.connected and self._usable(p, service, now)]
        usable.sort(key=lambda p: (-self._score(p, now), p.id))
        return [p.id for p in usable]

    def peers_for_shard(self, shard: int) -> frozenset[PeerId]:
        return frozenset(
            p.id
            for p in self._peers.values()
            if p.connected and p.serves(Service.RELAY) and p.on_shard(shard)
        )

    def peers_per_shard(self) -> dict[int, int]:
        return {shard: len(self.peers_for_shard(shard)) for shard in sorted(self._shards)}

    def connected_peers(self) -> frozenset[PeerId]:
        return frozenset(p.id for p in self._peers.values() if p.connected)

    def dials_in_flight(self) -> int:
        return sum(1 for p in self._peers.values() if p.dialing_since is not None)

    def is_banned(self, peer: PeerId) -> bool:
        p = self._peers.get(peer)
        return p is not None and p.banned

    def next_dial_at(self, peer: PeerId) -> float | None:
        p = self._peers.get(peer)
        return None if p is None else self._due_at(p, self.offline())

    def offline(self) -> bool:
        """No peer at all is connected: the short redial interval applies."""
        return not any(p.connected for p in self._peers.values())

    def next_redial_at(self, now: float) -> float | None:
        """While offline: when the next known peer is due to be dialled (None when online,
        when a dial is under way for every known peer, or when no peer is known)."""
        if not self.offline():
            return None
        waiting = [self._due_at(p, True) for p in self._dialable(now) if p.dialing_since is None]
        return min(waiting) if waiting else None

    def known_peers(self, now: float) -> int:
        """Peers we could dial for what we need (configured or discovered; not banned)."""
        return len(self._dialable(now))

    def _dialable(self, now: float) -> list[_Peer]:
        everything = {s: 1 for s in self._shards}
        services = {svc: 1 for svc, n in self.policy.service_targets.items() if n > 0}
        return [
            p
            for p in self._peers.values()
            if not p.banned and self._covers(p, everything, services, now)
        ]

    def score(self, peer: PeerId, now: float) -> float:
        p = self._peers.get(peer)
        return 0.0 if p is None else self._score(p, now)

    # --- policy -----------------------------------------------------------------------------

    def backoff_delay(self, failures: int) -> float:
        """Delay before the next dial after `failures` consecutive failures (≥ 1), jittered."""
        pol = self.policy
        exponent = min(failures - 1, 64)  # past the cap anyway; keeps the float finite
        raw = min(pol.backoff_cap, pol.backoff_base * pol.backoff_factor**exponent)
        return self._jittered(raw)

    def _offline_delay(self, delay: float) -> float:
        """The wait before redialling while we have no peer at all: `delay`, at most the
        jittered `offline_redial`."""
        cap = self.policy.offline_redial
        return delay if cap is None else min(delay, self._jittered(cap))

    def _due_at(self, p: _Peer, offline: bool) -> float:
        """When `p` may be dialled: its backoff, or sooner while we have no peer at all."""
        if self.policy.offline_redial is not None and offline:
            return min(p.next_dial_at, p.offline_dial_at)
        return p.next_dial_at

    def _jittered(self, delay: float) -> float:
        return delay * (1.0 - self.policy.backoff_jitter * self._rng.random())

    def _usable(self, p: _Peer, service: Service, now: float) -> bool:
        return p.serves(service) and p.cooldown_until.get(service, 0.0) <= now

    def _score(self, p: _Peer, now: float) -> float:
        elapsed = max(0.0, now - p.score_at)
        return p.score * math.pow(0.5, elapsed / self.policy.score_half_life)

    def _add_score(self, p: _Peer, delta: float, now: float) -> None:
        p.score = self._score(p, now) + delta
        p.score_at = now

    def _deficits(self, now: float) -> tuple[dict[int, int], dict[Service, int]]:
        """How many more peers each shard and service needs, counting dials in flight."""
        pol = self.policy
        shard_need = {s: pol.relay_peers_per_shard for s in self._shards}
        service_need = {s: n for s, n in pol.service_targets.items() if n > 0}
        for p in self._peers.values():
            if not (p.connected or p.dialing_since is not None):
                continue
            if p.serves(Service.RELAY):
                for s in shard_need:
                    if p.on_shard(s) or (p.shards is None and p.dialing_since is not None):
                        shard_need[s] -= 1
            for svc in service_need:
                if self._usable(p, svc, now):
                    service_need[svc] -= 1
        return (
            {s: n for s, n in shard_need.items() if n > 0},
            {s: n for s, n in service_need.items() if n > 0},
        )

    def _covers(
        self, p: _Peer, shard_need: dict[int, int], service_need: dict[Service, int], now: float
    ) -> bool:
        relay = p.serves(Service.RELAY) and any(
            p.shards is None or s in p.shards for s in shard_need
        )
        return relay or any(self._usable(p, svc, now) for svc in service_need)

    def _plan_dials(self, now: float) -> Iterable[Action]:
        pol = self.policy
        in_flight = self.dials_in_flight()
        budget = min(
            pol.max_dials_in_flight - in_flight,
            pol.max_dials_per_interval - len(self._dial_starts),
            pol.max_connections - len(self.connected_peers()) - in_flight,
        )
        if budget <= 0:
            return
        shard_need, service_need = self._deficits(now)
        if not shard_need and not service_need:
            return
        offline = self.offline()
        candidates = [
            p
            for p in self._peers.values()
            if not p.connected
            and p.dialing_since is None
            and not p.banned
            and self._due_at(p, offline) <= now
        ]
        candidates.sort(key=lambda p: (-self._score(p, now), p.failures, p.id))
        for p in candidates:
            if budget <= 0 or not (shard_need or service_need):
                return
            if not self._covers(p, shard_need, service_need, now):
                continue
            if p.serves(Service.RELAY):
                for s in list(shard_need):
                    if p.shards is None or s in p.shards:
                        shard_need[s] -= 1
                        if shard_need[s] <= 0:
                            del shard_need[s]
            for svc in list(service_need):
                if self._usable(p, svc, now):
                    service_need[svc] -= 1
                    if service_need[svc] <= 0:
                        del service_need[svc]
            p.dialing_since = now
            self._dial_starts.append(now)
            self.dials_started += 1
            budget -= 1
            yield Dial(p.id)

    def _plan_prune(self, now: float) -> Iterable[Action]:
        connected = [p for p in self._peers.values() if p.connected]
        excess = len(connected) - self.policy.max_connections
        if excess <= 0:
            return
        per_shard = {s: len(self.peers_for_shard(s)) for s in self._shards}
        per_service = {
            svc: sum(1 for p in connected if self._usable(p, svc, now))
            for svc in self.policy.service_targets
        }
        connected.sort(key=lambda p: (self._score(p, now), p.id))
        for p in connected:
            if excess <= 0:
                return
            if p.static:
                continue
            shards = [s for s in self._shards if p.serves(Service.RELAY) and p.on_shard(s)]
            services = [svc for svc in per_service if self._usable(p, svc, now)]
            if any(per_shard[s] <= self.policy.relay_peers_per_shard for s in shards):
                continue
            if any(per_service[svc] <= self.policy.service_targets[svc] for svc in services):
                continue
            for s in shards:
                per_shard[s] -= 1
            for svc in services:
                per_service[svc] -= 1
            p.connected = False
            excess -= 1
            yield Disconnect(p.id, "too many connections")
