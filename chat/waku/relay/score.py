"""Gossipsub v1.1 peer scoring (P1 time in mesh, P2 first deliveries, P4 invalid messages,
P6 IP colocation, P7 behaviour penalty), with Waku's weights. Sans-IO: every call takes `now`.

P3/P3b (mesh delivery rate and failure penalty) and P5 (app-specific) have weight 0 on Waku,
so they are not tracked.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from chat.waku.relay.params import ScoreParams

PeerId = Hashable


@dataclass(slots=True)
class TopicStats:
    in_mesh: bool = False
    graft_time: float = 0.0
    first_deliveries: float = 0.0
    invalid_deliveries: float = 0.0


@dataclass(slots=True)
class PeerStats:
    connected: bool = True
    expire: float = 0.0
    ip: str | None = None
    behaviour_penalty: float = 0.0
    topics: dict[str, TopicStats] = field(default_factory=dict)


class PeerScore:
    def __init__(self, params: ScoreParams) -> None:
        self.params = params
        self._stats: dict[PeerId, PeerStats] = {}
        self._peers_by_ip: dict[str, set[PeerId]] = {}
        self._next_decay: float | None = None

    def add_peer(self, peer: PeerId, ip: str | None) -> None:
        stats = self._stats.get(peer)
        if stats is None:
            stats = self._stats[peer] = PeerStats()
        stats.connected = True
        if stats.ip is not None:
            self._forget_ip(peer, stats.ip)
        stats.ip = ip
        if ip is not None and ip not in self.params.ip_colocation_whitelist:
            self._peers_by_ip.setdefault(ip, set()).add(peer)

    def remove_peer(self, peer: PeerId, now: float) -> None:
        """Keep a disconnected peer's score for `retain_score` so reconnecting does not reset it."""
        stats = self._stats.get(peer)
        if stats is None:
            return
        if stats.ip is not None:
            self._forget_ip(peer, stats.ip)
        if self.score(peer, now) > 0:
            del self._stats[peer]
            return
        stats.connected = False
        stats.expire = now + self.params.retain_score
        for topic in stats.topics.values():
            topic.in_mesh = False

    def _forget_ip(self, peer: PeerId, ip: str) -> None:
        peers = self._peers_by_ip.get(ip)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._peers_by_ip[ip]

    def _topic(self, peer: PeerId, topic: str) -> TopicStats | None:
        stats = self._stats.get(peer)
        if stats is None:
            return None
        ts = stats.topics.get(topic)
        if ts is None:
            ts = stats.topics[topic] = TopicStats()
        return ts

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.in_mesh = True
            ts.graft_time = now

    def prune(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.in_mesh = False

    def first_delivery(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            cap = self.params.topic.first_message_deliveries_cap
            ts.first_deliveries = min(ts.first_deliveries + 1.0, cap)

    def invalid_delivery(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.invalid_deliveries += 1.0

    def add_penalty(self, peer: PeerId, count: float = 1.0) -> None:
        stats = self._stats.get(peer)
        if stats is not None:
            stats.behaviour_penalty += count

    def score(self, peer: PeerId, now: float) -> float:
        stats = self._stats.get(peer)
        if stats is None:
            return 0.0
        p = self.params
        tp = p.topic
        total = 0.0
        for ts in stats.topics.values():
            topic_score = ts.first_deliveries * tp.first_message_deliveries_weight
            if ts.in_mesh and now > ts.graft_time:
                in_mesh = min((now - ts.graft_time) / tp.time_in_mesh_quantum, tp.time_in_mesh_cap)
                topic_score = in_mesh * tp.time_in_mesh_weight + topic_score
            invalid = ts.invalid_deliveries
            if invalid:
                topic_score += invalid**2 * tp.invalid_message_deliveries_weight
            total += topic_score * tp.topic_weight
        if p.topic_score_cap > 0 and total > p.topic_score_cap:
            total = p.topic_score_cap
        if stats.ip is not None:
            surplus = len(self._peers_by_ip.get(stats.ip, ())) - p.ip_colocation_factor_threshold
            if surplus > 0:
                total += surplus * surplus * p.ip_colocation_factor_weight
        excess = stats.behaviour_penalty - p.behaviour_penalty_threshold
        if excess > 0:
            total += excess * excess * p.behaviour_penalty_weight
        return total

    def refresh(self, now: float) -> None:
        """Decay counters every `decay_interval` and forget expired disconnected peers."""
        if self._next_decay is None:
            self._next_decay = now + self.params.decay_interval
            return
        if now < self._next_decay:
            return
        self._next_decay = now + self.params.decay_interval
        p = self.params
        to_zero = p.decay_to_zero
        expired = []
        for peer, stats in self._stats.items():
            if not stats.connected and now >= stats.expire:
                expired.append(peer)
                continue
            for ts in stats.topics.values():
                ts.first_deliveries *= p.topic.first_message_deliveries_decay
                if ts.first_deliveries < to_zero:
                    ts.first_deliveries = 0.0
                ts.invalid_deliveries *= p.topic.invalid_message_deliveries_decay
                if ts.invalid_deliveries < to_zero:
                    ts.invalid_deliveries = 0.0
            stats.behaviour_penalty *= p.behaviour_penalty_decay
            if stats.behaviour_penalty < to_zero:
                stats.behaviour_penalty = 0.0
        for peer in expired:
            del self._stats[peer]
