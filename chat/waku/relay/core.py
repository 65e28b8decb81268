"""Sans-IO gossipsub v1.1 router for Waku relay.

Events go in with the current time (`add_peer`, `remove_peer`, `handle_rpc`, `subscribe`,
`unsubscribe`, `publish`, `heartbeat`); actions come out of `take_actions()`: frames to send
(already length-prefixed), messages to deliver to the app, peers to disconnect. No I/O, no
clock, no tasks: a driver moves the bytes and calls `heartbeat` every `heartbeat_interval`.

Peer identities are opaque hashables.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from chat.waku.message import MessageTooLarge
from chat.waku.proto import rpc_pb2
from chat.waku.relay.mcache import MessageCache
from chat.waku.relay.metrics import RelayCounters
from chat.waku.relay.params import GossipParams, ScoreParams, Thresholds
from chat.waku.relay.score import PeerScore
from chat.waku.relay.verdict import Accept, Reject, Validator, accept_all
from chat.waku.relay.wire import (
    MESSAGE_ID_SIZE,
    ControlBatch,
    RpcError,
    decode_rpc,
    encode_publish_frame,
    encode_subscriptions,
    message_id,
)

log = logging.getLogger(__name__)

PeerId = Hashable


class PublishError(Exception):
    """A message could not be published."""


class NoPeersReached(PublishError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"no relay peer on {topic} took the message")
        self.topic = topic


class DuplicateMessage(PublishError):
    """These exact bytes were already seen within the seen-cache window."""


@dataclass(frozen=True, slots=True)
class Send:
    peer: PeerId
    frame: bytes
    """Length-prefixed RPC, ready for the wire."""


@dataclass(frozen=True, slots=True)
class Deliver:
    topic: str
    data: bytes
    message_id: bytes
    source: PeerId
    decoded: object = field(default=None, compare=False)
    """The validator's decoded form of `data` (see `Accept.decoded`), or None."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    peer: PeerId
    reason: str


Action = Send | Deliver | Disconnect


@dataclass(slots=True)
class PeerState:
    outbound: bool
    topics: set[str] = field(default_factory=set)
    idontwant: dict[bytes, float] = field(default_factory=dict)
    ihave_received: int = 0
    iwant_asked: int = 0
    disconnecting: bool = False


class Router:
    def __init__(
        self,
        *,
        params: GossipParams | None = None,
        score_params: ScoreParams | None = None,
        thresholds: Thresholds | None = None,
        validator: Validator = accept_all,
        rng: random.Random | None = None,
        counters: RelayCounters | None = None,
    ) -> None:
        self.params = params or GossipParams()
        self.thresholds = thresholds or Thresholds()
        self.validator = validator
        self.rng = rng or random.Random()
        self.counters = counters or RelayCounters()
        self.score = PeerScore(score_params or ScoreParams())
        self.peers: dict[PeerId, PeerState] = {}
        self.topic_peers: dict[str, set[PeerId]] = {}
        self.mesh: dict[str, set[PeerId]] = {}
        self.fanout: dict[str, set[PeerId]] = {}
        self.fanout_last_publish: dict[str, float] = {}
        self.backoff: dict[str, dict[PeerId, float]] = {}
        self.pruned_us: dict[str, set[PeerId]] = {}
        """Per topic, peers that answered our GRAFT (or left their mesh) with a PRUNE: live
        relays of the topic, e.g. a service node whose mesh is full (see serving_peers)."""
        self.seen: dict[bytes, float] = {}
        self.rejected: dict[bytes, float] = {}
        self.mcache = MessageCache(self.params.history_length, self.params.history_gossip)
        self.promises: dict[bytes, tuple[PeerId, float]] = {}
        self._asked: dict[bytes, float] = {}
        """Ids we requested by IWANT, with when: asked again at most once per heartbeat."""
        self._control: dict[PeerId, ControlBatch] = {}
        self._topic_bytes: dict[str, bytes] = {}
        self._actions: list[Action] = []
        self._ticks = 0
        self.next_heartbeat: float | None = None

    # ---- outputs -------------------------------------------------------------------------

    def take_actions(self) -> list[Action]:
        actions = self._actions
        self._actions = []
        return actions

    def peer_score(self, peer: PeerId, now: float) -> float:
        return self.score.score(peer, now)

    def penalise(self, peer: PeerId) -> None:
        """Stream-level misbehaviour seen by the driver (bad framing, stalls): one P7 unit."""
        self.score.add_penalty(peer)

    # ---- peers ---------------------------------------------------------------------------

    def add_peer(self, peer: PeerId, now: float, *, outbound: bool, ip: str | None = None) -> None:
        """A peer we can write relay RPCs to. Sends it our subscriptions."""
        if peer in self.peers:
            return
        self.peers[peer] = PeerState(outbound=outbound)
        self.score.add_peer(peer, ip)
        if self.mesh:
            self._actions.append(Send(peer, encode_subscriptions((t, True) for t in self.mesh)))

    def remove_peer(self, peer: PeerId, now: float) -> None:
        state = self.peers.pop(peer, None)
        if state is None:
            return
        for topic in state.topics:
            peers = self.topic_peers.get(topic)
            if peers is not None:
                peers.discard(peer)
                if not peers:
                    del self.topic_peers[topic]
        for mesh in self.mesh.values():
            mesh.discard(peer)
        for fanout in self.fanout.values():
            fanout.discard(peer)
        for pruned in self.pruned_us.values():
            pruned.discard(peer)
        self._control.pop(peer, None)
        self.score.remove_peer(peer, now)

    # ---- local subscriptions and publishing -----------------------------------------------

    def subscribe(self, topic: str, now: float) -> None:
        if topic in self.mesh:
            return
        self._check_topic(topic)
        mesh: set[PeerId] = set()
        self.mesh[topic] = mesh
        frame = encode_subscriptions([(topic, True)])
        self._actions.extend(Send(p, frame) for p in self.peers)
        # Seed the mesh from fanout first, then from any other subscribed peer.
        fanout = self.fanout.pop(topic, set())
        self.fanout_last_publish.pop(topic, None)
        usable = [p for p in fanout if self._graftable(p, topic, now)]
        if len(usable) < self.params.d:
            others = [
                p
                for p in self.topic_peers.get(topic, ())
                if p not in fanout and self._graftable(p, topic, now)
            ]
            self.rng.shuffle(others)
            usable.extend(others)
        for peer in usable[: self.params.d]:
            self._graft(peer, topic, now)
        self._flush_control()

    def unsubscribe(self, topic: str, now: float) -> None:
        mesh = self.mesh.pop(topic, None)
        if mesh is None:
            return
        frame = encode_subscriptions([(topic, False)])
        self._actions.extend(Send(p, frame) for p in self.peers)
        for peer in mesh:
            self._prune(peer, topic, now, self.params.unsubscribe_backoff)
        self._flush_control()

    def publish(self, topic: str, data: bytes, now: float) -> int:
        """Send a new message; returns how many peers it was queued to.

        Raises MessageTooLarge, DuplicateMessage, or NoPeersReached (nothing is remembered
        then, so the same bytes can be published again later).
        """
        sends = self.publish_sends(topic, data, now)
        self._actions.extend(sends)
        return len(sends)

    def publish_sends(self, topic: str, data: bytes, now: float) -> list[Send]:
        """`publish`, but the message's sends are returned to the caller instead of joining
        `take_actions()`: a driver can tell which of its sends left, and `retract` the message
        if none did."""
        p = self.params
        if len(data) > p.max_message_size:
            raise MessageTooLarge(len(data), p.max_message_size)
        self._check_topic(topic)
        mid = message_id(data)
        if mid in self.seen:
            raise DuplicateMessage("this message was already published or received")
        targets: Iterable[PeerId]
        if p.flood_publish:
            floor = self.thresholds.publish
            targets = [
                peer
                for peer in self.topic_peers.get(topic, ())
                if self.score.score(peer, now) >= floor
            ]
        elif topic in self.mesh:
            targets = self.mesh[topic]
        else:
            targets = self._fanout_peers(topic, now)
        frame = encode_publish_frame(self._encoded_topic(topic), data)
        sends = [Send(peer, frame) for peer in targets]
        if not sends:
            raise NoPeersReached(topic)
        if topic not in self.mesh:
            self.fanout_last_publish[topic] = now
        self.seen[mid] = now + p.seen_ttl
        self.mcache.put(mid, topic, frame)
        self.counters.published += 1
        return sends

    def retract(self, data: bytes) -> None:
        """Take back a message just published whose sends could not leave this node (every
        send queue full): it is forgotten as if never published, not advertised by gossip,
        and the same bytes can be published again."""
        mid = message_id(data)
        if self.seen.pop(mid, None) is not None:
            self.mcache.remove(mid)
            self.counters.published -= 1

    def _fanout_peers(self, topic: str, now: float) -> set[PeerId]:
        fanout = self.fanout.get(topic)
        if fanout is None:
            floor = self.thresholds.publish
            candidates = [
                peer
                for peer in self.topic_peers.get(topic, ())
                if self.score.score(peer, now) >= floor
            ]
            fanout = set(self.rng.sample(candidates, min(self.params.d, len(candidates))))
            self.fanout[topic] = fanout
        return fanout

    # ---- incoming RPCs ---------------------------------------------------------------------

    def handle_rpc(self, peer: PeerId, frame: bytes, now: float) -> None:
        """One RPC frame (without its length prefix) read from `peer`."""
        state = self.peers.get(peer)
        if state is None:
            return
        counters = self.counters
        counters.rpcs_received += 1
        if self.score.score(peer, now) < self.thresholds.graylist:
            counters.rpcs_from_graylisted += 1
            return
        try:
            rpc = decode_rpc(frame)
        except RpcError:
            counters.rpcs_malformed += 1
            self.score.add_penalty(peer)
            return
        if rpc.subscriptions:
            self._handle_subscriptions(peer, state, rpc.subscriptions, now)
            self._flush_control()
        for msg in rpc.publish:
            self._handle_message(peer, msg, now)
        if rpc.HasField("control"):
            self._handle_control(peer, state, rpc.control, now)
            self._flush_control()

    def _handle_subscriptions(
        self, peer: PeerId, state: PeerState, subs: Iterable[rpc_pb2.RPC.SubOpts], now: float
    ) -> None:
        p = self.params
        for sub in subs:
            topic = sub.topicid
            if not topic or len(topic) > p.max_topic_length:
                self.score.add_penalty(peer)
                continue
            if sub.subscribe:
                if topic in state.topics:
                    continue
                if len(state.topics) >= p.max_topics_per_peer:
                    self.score.add_penalty(peer)
                    continue
                state.topics.add(topic)
                self.topic_peers.setdefault(topic, set()).add(peer)
                # A thin mesh takes a new subscriber at once: waiting for the heartbeat loses
                # what is published meanwhile, as the peer then joins the mesh and is left
                # out of the gossip about messages forwarded before it joined.
                mesh = self.mesh.get(topic)
                if mesh is not None and len(mesh) < p.d_lo and self._graftable(peer, topic, now):
                    self._graft(peer, topic, now)
            elif topic in state.topics:
                state.topics.discard(topic)
                peers = self.topic_peers.get(topic)
                if peers is not None:
                    peers.discard(peer)
                    if not peers:
                        del self.topic_peers[topic]
                mesh = self.mesh.get(topic)
                if mesh is not None and peer in mesh:
                    mesh.discard(peer)
                    self.score.prune(peer, topic)
                fanout = self.fanout.get(topic)
                if fanout is not None:
                    fanout.discard(peer)

    def _handle_message(self, peer: PeerId, msg: rpc_pb2.Message, now: float) -> None:
        counters = self.counters
        counters.messages_received += 1
        topic = msg.topic
        mesh = self.mesh.get(topic)
        if mesh is None:
            counters.unsubscribed_topic += 1
            return
        if (
            msg.HasField("from")
            or msg.HasField("seqno")
            or msg.HasField("signature")
            or msg.HasField("key")
        ):
            counters.signed_rejected += 1
            self.score.invalid_delivery(peer, topic)
            return
        data = msg.data
        if len(data) > self.params.max_message_size:
            counters.oversized_rejected += 1
            self.score.invalid_delivery(peer, topic)
            return
        mid = message_id(data)
        if mid in self.seen:
            counters.duplicates += 1
            if mid in self.rejected:
                self.score.invalid_delivery(peer, topic)
            return
        self.seen[mid] = now + self.params.seen_ttl
        self.promises.pop(mid, None)
        if self._asked and self._asked.pop(mid, None) is not None:
            counters.received_after_iwant += 1
        try:
            verdict = self.validator(topic, data, peer)
        except Exception:
            # Our validator's bug must not cost the peer its score nor crash the node.
            log.exception("relay validator failed on a message from %s", peer)
            counters.validator_errors += 1
            return
        if not isinstance(verdict, Accept):
            if isinstance(verdict, Reject):
                counters.validator_rejected += 1
                self.rejected[mid] = now + self.params.seen_ttl
                self.score.invalid_delivery(peer, topic)
            else:
                counters.validator_ignored += 1
            return
        self.score.first_delivery(peer, topic)
        frame = encode_publish_frame(self._encoded_topic(topic), data)
        self.mcache.put(mid, topic, frame)
        actions = self._actions
        actions.append(Deliver(topic, data, mid, peer, verdict.decoded))
        counters.delivered += 1
        peers = self.peers
        forwarded = 0
        for target in mesh:
            if target == peer:
                continue
            dont = peers[target].idontwant
            if dont and mid in dont:
                continue
            actions.append(Send(target, frame))
            forwarded += 1
        counters.forwarded += forwarded

    def _handle_control(
        self, peer: PeerId, state: PeerState, control: rpc_pb2.ControlMessage, now: float
    ) -> None:
        if control.idontwant:
            self._handle_idontwant(state, control.idontwant, now)
        gossip_ok = self.score.score(peer, now) >= self.thresholds.gossip
        if control.ihave and gossip_ok:
            self._handle_ihave(peer, state, control.ihave, now)
        if control.iwant and gossip_ok:
            self._handle_iwant(peer, control.iwant)
        if control.graft:
            self._handle_graft(peer, state, control.graft, now)
        if control.prune:
            self._handle_prune(peer, control.prune, now)

    def _handle_idontwant(
        self, state: PeerState, entries: Iterable[rpc_pb2.ControlIDontWant], now: float
    ) -> None:
        dont = state.idontwant
        until = now + self.params.idontwant_ttl
        limit = self.params.max_idontwant_ids
        for entry in entries:
            for mid in entry.messageIDs:
                if len(mid) != MESSAGE_ID_SIZE:
                    continue
                dont[mid] = until
                if len(dont) > limit:
                    del dont[next(iter(dont))]

    def _handle_ihave(
        self,
        peer: PeerId,
        state: PeerState,
        entries: Iterable[rpc_pb2.ControlIHave],
        now: float,
    ) -> None:
        p = self.params
        wanted: list[bytes] = []
        budget = p.max_ihave_length - state.iwant_asked
        for entry in entries:
            state.ihave_received += 1
            if state.ihave_received > p.max_ihave_messages or budget <= 0:
                break
            if entry.topicID not in self.mesh:
                continue
            for mid in entry.messageIDs:
                if len(mid) != MESSAGE_ID_SIZE or mid in self.seen:
                    continue
                asked_at = self._asked.get(mid)
                if asked_at is not None and now - asked_at < p.heartbeat_interval:
                    continue
                wanted.append(mid)
                self._asked[mid] = now
                budget -= 1
                if budget <= 0:
                    break
        if not wanted:
            return
        state.iwant_asked += len(wanted)
        self.rng.shuffle(wanted)
        # Like go-libp2p, hold the peer to one randomly chosen promise per IWANT.
        self.promises.setdefault(wanted[0], (peer, now + p.iwant_followup_time))
        self._batch(peer).iwant.extend(wanted)
        self.counters.iwant_sent += len(wanted)

    def _handle_iwant(self, peer: PeerId, entries: Iterable[rpc_pb2.ControlIWant]) -> None:
        limit = self.params.gossip_retransmission
        served = 0
        for entry in entries:
            for mid in entry.messageIDs:
                cached = self.mcache.get(mid)
                if cached is None:
                    continue
                count = cached.sent_to.get(peer, 0)
                if count >= limit:
                    continue
                cached.sent_to[peer] = count + 1
                self._actions.append(Send(peer, cached.frame))
                served += 1
                if served >= self.params.max_ihave_length:
                    return
        self.counters.iwant_served += served

    def _handle_graft(
        self,
        peer: PeerId,
        state: PeerState,
        entries: Iterable[rpc_pb2.ControlGraft],
        now: float,
    ) -> None:
        p = self.params
        for entry in entries:
            topic = entry.topicID
            mesh = self.mesh.get(topic)
            if mesh is None:
                # Not our topic: refuse without telling them anything else.
                self._batch(peer).prunes.append((topic, int(p.prune_backoff)))
                continue
            if peer in mesh:
                continue
            until = self.backoff.get(topic, {}).get(peer)
            if until is not None and now < until:
                self.score.add_penalty(peer)
                self._prune(peer, topic, now, p.prune_backoff, in_mesh=False)
                continue
            if self.score.score(peer, now) < 0:
                self._prune(peer, topic, now, p.prune_backoff, in_mesh=False)
                continue
            if len(mesh) >= p.d_hi and not state.outbound:
                self._prune(peer, topic, now, p.prune_backoff, in_mesh=False)
                continue
            mesh.add(peer)
            self.score.graft(peer, topic, now)

    def _handle_prune(
        self, peer: PeerId, entries: Iterable[rpc_pb2.ControlPrune], now: float
    ) -> None:
        for entry in entries:
            topic = entry.topicID
            mesh = self.mesh.get(topic)
            if mesh is not None and peer in mesh:
                mesh.discard(peer)
                self.score.prune(peer, topic)
            backoff = float(entry.backoff) if entry.backoff else self.params.prune_backoff
            # Peer exchange (entry.peers) is not acted on: the host does discovery.
            self._set_backoff(peer, topic, now + backoff)
            self.pruned_us.setdefault(topic, set()).add(peer)

    def serving_peers(self, topic: str) -> set[PeerId]:
        """Peers that relay this topic to and from us: our mesh, plus subscribed peers that
        pruned us (a service node at D_hi refuses more mesh members, yet it takes what we
        publish and gossips to us; it answered, so it is alive)."""
        mesh = self.mesh.get(topic, set())
        subscribed = self.topic_peers.get(topic, set())
        return mesh | (self.pruned_us.get(topic, set()) & subscribed)

    # ---- heartbeat -----------------------------------------------------------------------

    def heartbeat(self, now: float) -> None:
        p = self.params
        self._ticks += 1
        self.next_heartbeat = now + p.heartbeat_interval
        self.score.refresh(now)
        scores = {peer: self.score.score(peer, now) for peer in self.peers}
        self._disconnect_graylisted(scores)
        self._check_promises(now)
        for topic, mesh in self.mesh.items():
            self._maintain_mesh(topic, mesh, scores, now)
        self._maintain_fanout(scores, now)
        self._emit_gossip(scores)
        self._flush_control()
        self.mcache.shift()
        self._expire(now)

    def _disconnect_graylisted(self, scores: dict[PeerId, float]) -> None:
        if not self.thresholds.disconnect_graylisted:
            return
        floor = self.thresholds.graylist
        for peer, score in scores.items():
            state = self.peers[peer]
            if score < floor and not state.disconnecting:
                state.disconnecting = True
                self.counters.disconnects_requested += 1
                self._actions.append(Disconnect(peer, f"score {score:.0f} below graylist"))

    def _check_promises(self, now: float) -> None:
        broken = [mid for mid, (_, until) in self.promises.items() if now >= until]
        for mid in broken:
            peer, _ = self.promises.pop(mid)
            self.counters.broken_promises += 1
            self.score.add_penalty(peer)

    def _maintain_mesh(
        self, topic: str, mesh: set[PeerId], scores: dict[PeerId, float], now: float
    ) -> None:
        p = self.params
        for peer in [peer for peer in mesh if scores.get(peer, 0.0) < 0]:
            self._prune(peer, topic, now, p.prune_backoff)
        if len(mesh) < p.d_lo:
            candidates = self._candidates(topic, mesh, scores, now)
            for peer in self.rng.sample(candidates, min(p.d - len(mesh), len(candidates))):
                self._graft(peer, topic, now)
        if len(mesh) > p.d_hi:
            self._trim_mesh(topic, mesh, scores, now)
        if len(mesh) >= p.d_lo:
            outbound = sum(1 for peer in mesh if self.peers[peer].outbound)
            if outbound < p.d_out:
                candidates = [
                    peer
                    for peer in self._candidates(topic, mesh, scores, now)
                    if self.peers[peer].outbound
                ]
                need = min(p.d_out - outbound, len(candidates))
                for peer in self.rng.sample(candidates, need):
                    self._graft(peer, topic, now)
        if self._ticks % p.opportunistic_graft_ticks == 0 and len(mesh) > 1:
            ranked = sorted(mesh, key=lambda peer: scores.get(peer, 0.0))
            median = scores.get(ranked[len(ranked) // 2], 0.0)
            if median < self.thresholds.opportunistic_graft:
                better = [
                    peer
                    for peer in self._candidates(topic, mesh, scores, now)
                    if scores[peer] > median
                ]
                count = min(p.opportunistic_graft_peers, len(better))
                for peer in self.rng.sample(better, count):
                    self._graft(peer, topic, now)

    def _candidates(
        self, topic: str, mesh: set[PeerId], scores: dict[PeerId, float], now: float
    ) -> list[PeerId]:
        backoff = self.backoff.get(topic, {})
        return [
            peer
            for peer in self.topic_peers.get(topic, ())
            if peer not in mesh
            and scores.get(peer, 0.0) >= 0
            and not (peer in backoff and now < backoff[peer])
        ]

    def _trim_mesh(
        self, topic: str, mesh: set[PeerId], scores: dict[PeerId, float], now: float
    ) -> None:
        p = self.params
        ranked = sorted(mesh, key=lambda peer: scores.get(peer, 0.0), reverse=True)
        keep = ranked[: p.d_score]
        rest = ranked[p.d_score :]
        self.rng.shuffle(rest)
        keep += rest[: p.d - len(keep)]
        dropped = rest[p.d - p.d_score :] if p.d > p.d_score else rest
        # Keep at least d_out outbound peers: swap them in for inbound ones picked at random.
        outbound = sum(1 for peer in keep if self.peers[peer].outbound)
        if outbound < p.d_out:
            spare = [peer for peer in dropped if self.peers[peer].outbound]
            for peer in spare[: p.d_out - outbound]:
                for i in range(len(keep) - 1, -1, -1):
                    if not self.peers[keep[i]].outbound:
                        dropped.append(keep[i])
                        keep[i] = peer
                        dropped.remove(peer)
                        break
        kept = set(keep)
        for peer in list(mesh):
            if peer not in kept:
                self._prune(peer, topic, now, p.prune_backoff)

    def _maintain_fanout(self, scores: dict[PeerId, float], now: float) -> None:
        p = self.params
        for topic in [t for t, at in self.fanout_last_publish.items() if now - at > p.fanout_ttl]:
            del self.fanout_last_publish[topic]
            self.fanout.pop(topic, None)
        floor = self.thresholds.publish
        for topic, fanout in self.fanout.items():
            subscribed = self.topic_peers.get(topic, set())
            for peer in [q for q in fanout if q not in subscribed or scores.get(q, 0.0) < floor]:
                fanout.discard(peer)
            if len(fanout) < p.d:
                candidates = [
                    q for q in subscribed if q not in fanout and scores.get(q, 0.0) >= floor
                ]
                fanout.update(self.rng.sample(candidates, min(p.d - len(fanout), len(candidates))))

    def _emit_gossip(self, scores: dict[PeerId, float]) -> None:
        p = self.params
        by_topic = self.mcache.gossip_ids()
        if not by_topic:
            return
        floor = self.thresholds.gossip
        for topic, ids in by_topic.items():
            exclude = self.mesh.get(topic)
            if exclude is None:
                exclude = self.fanout.get(topic)
                if exclude is None:
                    continue
            candidates = [
                peer
                for peer in self.topic_peers.get(topic, ())
                if peer not in exclude and scores.get(peer, 0.0) >= floor
            ]
            if not candidates:
                continue
            count = max(p.d_lazy, int(len(candidates) * p.gossip_factor))
            if len(ids) > p.max_ihave_length:
                ids = self.rng.sample(ids, p.max_ihave_length)
            for peer in self.rng.sample(candidates, min(count, len(candidates))):
                self._batch(peer).ihave.append((topic, ids))

    def _expire(self, now: float) -> None:
        _expire_ordered(self.seen, now, self.params.max_seen_entries)
        _expire_ordered(self.rejected, now, self.params.max_seen_entries)
        horizon = now - self.params.iwant_followup_time
        for mid in [m for m, at in self._asked.items() if at < horizon]:
            del self._asked[mid]
        for topic in list(self.backoff):
            entries = self.backoff[topic]
            for peer in [q for q, until in entries.items() if now >= until]:
                del entries[peer]
            if not entries:
                del self.backoff[topic]
        for state in self.peers.values():
            state.ihave_received = 0
            state.iwant_asked = 0
            if state.idontwant:
                _expire_ordered(state.idontwant, now, self.params.max_idontwant_ids)

    # ---- helpers ---------------------------------------------------------------------------

    def _check_topic(self, topic: str) -> None:
        if not topic or len(topic) > self.params.max_topic_length:
            raise ValueError(f"pubsub topic must be 1..{self.params.max_topic_length} characters")

    def _encoded_topic(self, topic: str) -> bytes:
        encoded = self._topic_bytes.get(topic)
        if encoded is None:
            encoded = topic.encode()
            if len(self._topic_bytes) < 4096:
                self._topic_bytes[topic] = encoded
        return encoded

    def _graftable(self, peer: PeerId, topic: str, now: float) -> bool:
        until = self.backoff.get(topic, {}).get(peer)
        if until is not None and now < until:
            return False
        return peer in self.peers and self.score.score(peer, now) >= 0

    def _batch(self, peer: PeerId) -> ControlBatch:
        batch = self._control.get(peer)
        if batch is None:
            batch = self._control[peer] = ControlBatch()
        return batch

    def _graft(self, peer: PeerId, topic: str, now: float) -> None:
        self.mesh[topic].add(peer)
        self.score.graft(peer, topic, now)
        self._batch(peer).grafts.append(topic)
        self.counters.grafts_sent += 1

    def _prune(
        self, peer: PeerId, topic: str, now: float, backoff: float, *, in_mesh: bool = True
    ) -> None:
        if in_mesh:
            mesh = self.mesh.get(topic)
            if mesh is not None:
                mesh.discard(peer)
            self.score.prune(peer, topic)
        self._set_backoff(peer, topic, now + backoff)
        self._batch(peer).prunes.append((topic, int(backoff)))
        self.counters.prunes_sent += 1

    def _set_backoff(self, peer: PeerId, topic: str, until: float) -> None:
        entries = self.backoff.setdefault(topic, {})
        if entries.get(peer, 0.0) < until:
            entries[peer] = until

    def _flush_control(self) -> None:
        if not self._control:
            return
        p = self.params
        for peer, batch in self._control.items():
            if peer in self.peers and batch:
                for frame in batch.encode(p.max_rpc_frame_size, p.max_ids_per_control_entry):
                    self._actions.append(Send(peer, frame))
        self._control.clear()


def _expire_ordered(entries: dict[bytes, float], now: float, max_entries: int) -> None:
    """Drop expired entries from a dict whose values grow with insertion order."""
    while entries:
        first = next(iter(entries))
        if entries[first] > now and len(entries) <= max_entries:
            return
        del entries[first]
