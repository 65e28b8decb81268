"""Runs a RelayScenario on SimNetwork under trio's MockClock and returns its report (a dict
ready for JSON): delivery, latency, hops, duplicates, bandwidth and amplification, mesh
health, partitions, churn and the spammer's fate.

Nodes are 0..N-1 (honest) and N (the spammer). Every random choice comes from the scenario's
seed; nothing reads the wall clock, so one seed gives one report, byte for byte.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

import trio
from trio.testing import MockClock

from chat.lab.scenario import RelayScenario
from chat.lab.stats import histogram_summary, ordered_histogram, rounded, summary
from chat.waku.relay.core import Deliver, PublishError
from chat.waku.relay.metrics import RelayCounters
from chat.waku.relay.params import GossipParams
from chat.waku.relay.sim import SimNetwork
from chat.waku.relay.verdict import ACCEPT, Reject, ValidationResult
from chat.waku.relay.wire import encode_publish_frame, message_id

TOPIC = "/waku/2/rs/1/0"
SPAM_MARK = b"SPAM"
LATENCY_UNIT = 1e-4
"""Latencies are histogrammed in 0.1 ms steps."""
MAX_HOPS = 254


def reject_spam(topic: str, data: bytes, peer: Hashable) -> ValidationResult:
    return Reject("spam") if data.startswith(SPAM_MARK) else ACCEPT


@dataclass(slots=True)
class Published:
    origin: int
    at: float
    hops: bytearray
    """Per node: 0 = not delivered, else hops + 1 (the origin holds 1)."""


@dataclass(slots=True)
class SpamWatch:
    victims: list[int] = field(default_factory=list)
    in_mesh_at_start: set[int] = field(default_factory=set)
    pruned_at: dict[int, float] = field(default_factory=dict)
    negative_at: dict[int, float] = field(default_factory=dict)
    disconnected_at: dict[int, float] = field(default_factory=dict)
    frames_sent: int = 0
    delivered_to_apps: int = 0
    lowest_score: float = 0.0


class RelayRun:
    def __init__(self, scenario: RelayScenario) -> None:
        self.scenario = scenario
        s = scenario
        params = dataclasses.replace(GossipParams(), d=s.d, d_lo=s.d_lo, d_hi=s.d_hi)
        params = dataclasses.replace(params, d_score=min(params.d_score, s.d))
        params = dataclasses.replace(params, d_out=min(params.d_out, s.d_lo, s.d // 2))
        self.sim = SimNetwork(seed=s.seed, params=params, latency=s.latency.model(), loss=s.loss)
        self.sim.on_deliver = self._delivered
        self.sim.on_disconnect = self._disconnected
        self.rng = self.sim.rng
        self.honest = list(range(s.nodes))
        self.spammer = s.nodes if s.spammer is not None else None
        self.sessions: list[list[tuple[float, float]]] = [[] for _ in range(s.nodes)]
        self.messages: list[Published] = []
        self.by_id: dict[bytes, int] = {}
        self.latency_histogram: Counter[int] = Counter()
        self.hops_histogram: Counter[int] = Counter()
        self.redelivered = 0
        self.publish_failed = 0
        self.retired = RelayCounters()
        """Counters of routers that left (churn), so totals cover every router that ran."""
        self.churn_events = 0
        self.spam = SpamWatch()
        self.mesh_after_warmup: dict[str, object] = {}
        self.start = 0.0
        self.end = 0.0

    # ---- the run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, object]:
        s, sim = self.scenario, self.sim
        now = self.start = trio.current_time()
        for node in self.honest:
            sim.add_router(node, now, validator=reject_spam)
            self.sessions[node].append((now, math.inf))
        sim.random_topology(self.honest, s.degree, now)
        if self.spammer is not None and s.spammer is not None:
            sim.add_router(self.spammer, now)
            for victim in self.rng.sample(self.honest, min(s.spammer.degree, s.nodes)):
                sim.connect(self.spammer, victim, now)
        for member in list(sim.routers):
            sim.subscribe(member, TOPIC, now)
        traffic = now + s.warmup
        self.end = traffic + s.duration + s.settle
        self._schedule_traffic(traffic)
        await sim.run_until(traffic)
        self.mesh_after_warmup = self._mesh_health()
        await sim.run_until(self.end)
        return self._report()

    def _schedule_traffic(self, traffic: float) -> None:
        s, sim = self.scenario, self.sim
        # Partitions first: a message published at the instant of a cut is already cut off.
        for part in s.partitions:
            cut = int(s.nodes * part.fraction)
            groups = [set(self.honest[:cut]), set(self.honest[cut:])]
            if self.spammer is not None:
                groups[1].add(self.spammer)
            sim.schedule(traffic + part.start, _Partitioner(sim, groups).cut)
            sim.schedule(traffic + part.end, _Partitioner(sim, groups).heal)
        count = int(s.duration / s.publish_interval)
        for index in range(count):
            sim.schedule(traffic + index * s.publish_interval, self._publish)
        if s.churn.interval > 0:
            at = traffic + s.churn.interval
            while at < traffic + s.duration:
                sim.schedule(at, self._leave)
                at += s.churn.interval
        if s.spammer is not None:
            first = traffic + s.spammer.start
            sim.schedule(first, self._spam_begins)
            step = 1.0 / s.spammer.rate
            for index in range(int((s.duration - s.spammer.start) * s.spammer.rate)):
                sim.schedule(first + index * step, self._spam)
            tick = first + 1.0
            while tick <= self.end:
                sim.schedule(tick, self._watch_spammer)
                tick += sim.params.heartbeat_interval

    def _online_honest(self) -> list[int]:
        return [node for node in self.honest if node in self.sim.routers]

    def _publish(self, now: float) -> None:
        origin = self.rng.choice(self._online_honest())
        index = len(self.messages)
        header = b"msg %08d from %06d " % (index, origin)
        data = header + bytes(max(0, self.scenario.payload_size - len(header)))
        hops = bytearray(self.scenario.nodes + 1)  # the spammer's router delivers too
        hops[origin] = 1
        try:
            self.sim.publish(origin, TOPIC, data, now)
        except PublishError:
            self.publish_failed += 1
            return
        self.messages.append(Published(origin, now, hops))
        self.by_id[message_id(data)] = index

    def _delivered(self, node: Hashable, action: Deliver, now: float) -> None:
        index = self.by_id.get(action.message_id)
        if index is None:
            self.spam.delivered_to_apps += 1
            return
        record = self.messages[index]
        hops = record.hops
        assert isinstance(node, int)
        if hops[node]:
            self.redelivered += 1  # a node that left and came back got it again
            return
        source = action.source
        before = hops[source] if isinstance(source, int) and source < len(hops) else 0
        hop = min(before, MAX_HOPS) if before else MAX_HOPS
        hops[node] = hop + 1
        self.hops_histogram[hop] += 1
        self.latency_histogram[round((now - record.at) / LATENCY_UNIT)] += 1

    # ---- churn -----------------------------------------------------------------------------

    def _leave(self, now: float) -> None:
        node = self.rng.choice(self._online_honest())
        router = self.sim.routers[node]
        for name, value in router.counters.as_dict().items():
            setattr(self.retired, name, getattr(self.retired, name) + value)
        self.sim.remove_node(node, now)
        join, _ = self.sessions[node][-1]
        self.sessions[node][-1] = (join, now)
        self.churn_events += 1
        self.sim.schedule(now + self.scenario.churn.downtime, lambda t: self._join(node, t))

    def _join(self, node: int, now: float) -> None:
        sim = self.sim
        others = self._online_honest()
        sim.add_router(node, now, validator=reject_spam)
        self.sessions[node].append((now, math.inf))
        for other in self.rng.sample(others, min(self.scenario.degree, len(others))):
            sim.connect(node, other, now)
        sim.subscribe(node, TOPIC, now)

    # ---- the spammer -----------------------------------------------------------------------

    def _spam_begins(self, now: float) -> None:
        assert self.spammer is not None
        watch = self.spam
        watch.victims = sorted(
            p for p in self.sim.adjacency.get(self.spammer, {}) if isinstance(p, int)
        )
        for victim in watch.victims:
            mesh = self.sim.routers[victim].mesh.get(TOPIC, set())
            if self.spammer in mesh:
                watch.in_mesh_at_start.add(victim)

    def _spam(self, now: float) -> None:
        assert self.spammer is not None
        data = SPAM_MARK + b" %08d " % self.spam.frames_sent
        data += bytes(max(0, self.scenario.payload_size - len(data)))
        frame = encode_publish_frame(TOPIC.encode(), data)
        for peer in list(self.sim.adjacency.get(self.spammer, {})):
            self.sim.inject(self.spammer, peer, frame, now)
        self.spam.frames_sent += 1

    def _watch_spammer(self, now: float) -> None:
        watch = self.spam
        for victim in watch.victims:
            router = self.sim.routers.get(victim)
            if router is None:
                continue
            score = router.peer_score(self.spammer, now)
            watch.lowest_score = min(watch.lowest_score, score)
            if score < 0:
                watch.negative_at.setdefault(victim, now)
            if victim in watch.in_mesh_at_start and self.spammer not in router.mesh.get(
                TOPIC, set()
            ):
                watch.pruned_at.setdefault(victim, now)

    def _disconnected(self, a: Hashable, b: Hashable, now: float) -> None:
        if self.spammer is not None and self.spammer in (a, b) and self.spam.victims:
            victim = b if a == self.spammer else a
            assert isinstance(victim, int)
            self.spam.disconnected_at.setdefault(victim, now)

    # ---- the report ------------------------------------------------------------------------

    def _mesh_health(self) -> dict[str, object]:
        sim, p = self.sim, self.sim.params
        degrees: Counter[int] = Counter()
        links: Counter[int] = Counter()
        for node in self._online_honest():
            degrees[len(sim.routers[node].mesh.get(TOPIC, ()))] += 1
            links[sim.degree(node)] += 1
        total = sum(degrees.values())
        inside = sum(count for deg, count in degrees.items() if p.d_lo <= deg <= p.d_hi)
        return {
            "routers": total,
            "mesh_degree": histogram_summary(degrees),
            "mesh_degree_histogram": ordered_histogram(degrees),
            "within_d_lo_d_hi": rounded(inside / total if total else 0.0),
            "below_d_lo": sum(count for deg, count in degrees.items() if deg < p.d_lo),
            "above_d_hi": sum(count for deg, count in degrees.items() if deg > p.d_hi),
            "connections": histogram_summary(links),
        }

    def _expected(self, node: int, at: float) -> bool:
        until = min(at + self.scenario.settle, self.end)
        return any(join <= at and leave >= until for join, leave in self.sessions[node])

    def _report(self) -> dict[str, object]:
        s = self.scenario
        expected = delivered = 0
        per_message: list[float] = []
        for record in self.messages:
            want = got = 0
            hops = record.hops
            for node in self.honest:
                if node == record.origin or not self._expected(node, record.at):
                    continue
                want += 1
                got += hops[node] != 0
            expected += want
            delivered += got
            per_message.append(got / want if want else 1.0)
        report: dict[str, object] = {
            "scenario": _scenario_dict(s),
            "messages": {
                "published": len(self.messages),
                "publish_failed": self.publish_failed,
                "expected_deliveries": expected,
                "delivered": delivered,
                "delivery_ratio": rounded(delivered / expected if expected else 1.0),
                "fully_delivered_messages": sum(1 for ratio in per_message if ratio == 1.0),
                "per_message_delivery": summary(per_message),
                "redelivered_after_rejoin": self.redelivered,
            },
            "latency_ms": histogram_summary(self.latency_histogram, LATENCY_UNIT * 1000),
            "hops": histogram_summary(self.hops_histogram),
            "hops_histogram": ordered_histogram(self.hops_histogram),
            "gossip": self._gossip(delivered),
            "bandwidth": self._bandwidth(),
            "mesh": {"after_warmup": self.mesh_after_warmup, "at_end": self._mesh_health()},
            "churn": {"leaves": self.churn_events},
            "partitions": self._partitions(),
        }
        if self.spammer is not None:
            report["spammer"] = self._spammer_report()
        return report

    def _counters(self) -> RelayCounters:
        total = dataclasses.replace(self.retired)
        for node in self._online_honest():
            for name, value in self.sim.routers[node].counters.as_dict().items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def _gossip(self, delivered: int) -> dict[str, object]:
        c = self._counters()
        received = c.delivered or 1
        return {
            "messages_received": c.messages_received,
            "duplicates": c.duplicates,
            "duplicates_per_delivery": rounded(c.duplicates / received),
            "received_after_iwant": c.received_after_iwant,
            "iwant_sent": c.iwant_sent,
            "iwant_served": c.iwant_served,
            "grafts_sent": c.grafts_sent,
            "prunes_sent": c.prunes_sent,
            "validator_rejected": c.validator_rejected,
            "disconnects_requested": c.disconnects_requested,
            "frames_sent": self.sim.frames_sent,
            "frames_lost": self.sim.frames_lost,
        }

    def _bandwidth(self) -> dict[str, object]:
        s = self.scenario
        seconds = self.end - self.start
        sent: list[float] = []
        received: list[float] = []
        amplification: list[float] = []
        delivered_per_node = [0] * s.nodes
        for record in self.messages:
            hops = record.hops
            for node in self.honest:
                if hops[node]:
                    delivered_per_node[node] += 1
        for node in self.honest:
            log = self.sim.logs[node]
            sent.append(log.bytes_sent / seconds)
            received.append(log.bytes_received / seconds)
            payload = delivered_per_node[node] * s.payload_size
            if payload:
                amplification.append(log.bytes_sent / payload)
        total_sent = sum(self.sim.logs[node].bytes_sent for node in self.honest)
        message_sent = sum(self.sim.logs[node].message_bytes_sent for node in self.honest)
        total_payload = sum(delivered_per_node) * s.payload_size or 1
        return {
            "bytes_sent_per_s": summary(sent, 1),
            "bytes_received_per_s": summary(received, 1),
            "amplification_per_node": summary(amplification, 3),
            "amplification_network": rounded(total_sent / total_payload, 3),
            "amplification_message_frames": rounded(message_sent / total_payload, 3),
            "amplification_control_frames": rounded((total_sent - message_sent) / total_payload, 3),
        }

    def _partitions(self) -> list[dict[str, object]]:
        s = self.scenario
        out: list[dict[str, object]] = []
        traffic = self.start + s.warmup
        for part in s.partitions:
            start, end = traffic + part.start, traffic + part.end
            cut = int(s.nodes * part.fraction)
            during = [m for m in self.messages if start <= m.at < end]
            want = got = 0
            for record in during:
                far = range(cut, s.nodes) if record.origin < cut else range(cut)
                for node in far:
                    if self._expected(node, record.at):
                        want += 1
                        got += record.hops[node] != 0
            out.append(
                {
                    "start": part.start,
                    "end": part.end,
                    "messages_during": len(during),
                    "cross_deliveries_expected": want,
                    "cross_delivered_after_heal": got,
                    "cross_delivery_ratio": rounded(got / want if want else 1.0),
                    "gossip_window_s": rounded(
                        self.sim.params.history_gossip * self.sim.params.heartbeat_interval
                    ),
                }
            )
        return out

    def _spammer_report(self) -> dict[str, object]:
        watch, spammer = self.spam, self.scenario.spammer
        assert spammer is not None and self.spammer is not None
        begin = self.start + self.scenario.warmup + spammer.start

        def delays(times: dict[int, float]) -> dict[str, float]:
            return summary([at - begin for at in times.values()], 3)

        return {
            "node": self.spammer,
            "victims": len(watch.victims),
            "in_mesh_at_start": len(watch.in_mesh_at_start),
            "spam_messages_sent": watch.frames_sent,
            "spam_delivered_to_apps": watch.delivered_to_apps,
            "score_negative": len(watch.negative_at),
            "seconds_to_negative_score": delays(watch.negative_at),
            "pruned_from_mesh": len(watch.pruned_at),
            "seconds_to_prune": delays(watch.pruned_at),
            "disconnected_by": len(watch.disconnected_at),
            "seconds_to_disconnect": delays(watch.disconnected_at),
            "lowest_score": rounded(watch.lowest_score, 1),
            "still_connected": self.sim.degree(self.spammer),
        }


@dataclass(slots=True)
class _Partitioner:
    sim: SimNetwork
    groups: list[set[int]]

    def cut(self, now: float) -> None:
        self.sim.partition(self.groups)

    def heal(self, now: float) -> None:
        self.sim.heal()


def _scenario_dict(scenario: RelayScenario) -> dict[str, object]:
    data = dataclasses.asdict(scenario)
    data["partitions"] = [dict(p) for p in data["partitions"]]
    return data


def run_relay_scenario(scenario: RelayScenario) -> dict[str, object]:
    """Runs the scenario to the end in this thread (a trio run on a MockClock)."""
    return trio.run(_run, scenario, clock=MockClock(autojump_threshold=0))


async def _run(scenario: RelayScenario) -> dict[str, object]:
    return await RelayRun(scenario).run()
