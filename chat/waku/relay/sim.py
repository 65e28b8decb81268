"""Many relay routers in one process over a simulated network (latency, loss, partitions, churn).

A discrete-event loop on trio's clock: frames, heartbeats and scheduled callbacks are events
in a heap ordered by (time, sequence number); the loop sleeps until the next one, so under
`trio.testing.MockClock(autojump_threshold=0)` a minute of network time takes as long as the
routers' CPU work. Each event is handled with its own timestamp as `now`, so batching nearby
events never changes what the routers see.

Determinism: one seeded `random.Random` drives everything (each router gets its own, seeded
from it), events with equal times run in the order they were scheduled, and links live in
insertion-ordered dicts, so a run depends only on the seed and the calls made, never on
hash randomisation or the wall clock (use integer node ids for byte-identical runs).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field

import trio

from chat.waku.framing import FrameDecoder, FramingError
from chat.waku.relay.core import Deliver, Disconnect, Router, Send
from chat.waku.relay.params import GossipParams, ScoreParams, Thresholds
from chat.waku.relay.verdict import Validator, accept_all

NodeId = Hashable
LatencyModel = Callable[[random.Random], float]
"""Draws one link's one-way latency in seconds."""

_TAG_PUBLISH = 0x12
"""RPC field 2 (publish): routers put messages and control in separate frames."""
_RECEIVE = 0
_HEARTBEAT = 1
_CALL = 2


@dataclass(slots=True)
class LinkState:
    latency: float
    loss: float


@dataclass(slots=True)
class NodeLog:
    delivered: dict[bytes, float] = field(default_factory=dict)
    """Message id -> time of first delivery to the app (unless the network has `on_deliver`)."""
    duplicate_deliveries: int = 0
    raw_frames: list[bytes] = field(default_factory=list)
    """Frames received by a raw (non-router) node."""
    frames_sent: int = 0
    bytes_sent: int = 0
    message_bytes_sent: int = 0
    """The part of `bytes_sent` in frames that carry messages (the rest is control)."""
    frames_received: int = 0
    bytes_received: int = 0


def uniform_latency(low: float, high: float) -> LatencyModel:
    return lambda rng: rng.uniform(low, high)


class SimNetwork:
    def __init__(
        self,
        *,
        seed: int = 1,
        params: GossipParams | None = None,
        score_params: ScoreParams | None = None,
        thresholds: Thresholds | None = None,
        latency: tuple[float, float] | LatencyModel = (0.005, 0.050),
        loss: float = 0.0,
        quantum: float = 0.002,
    ) -> None:
        self.rng = random.Random(seed)
        self.params = params or GossipParams()
        self.score_params = score_params
        self.thresholds = thresholds
        self.latency: LatencyModel = (
            uniform_latency(*latency) if isinstance(latency, tuple) else latency
        )
        self.loss = loss
        self.quantum = quantum
        self.routers: dict[NodeId, Router] = {}
        self.raw_nodes: set[NodeId] = set()
        self.logs: dict[NodeId, NodeLog] = {}
        self.adjacency: dict[NodeId, dict[NodeId, LinkState]] = {}
        """Each node's links; both ends share one LinkState."""
        self.groups: dict[NodeId, int] | None = None
        self.frames_sent = 0
        self.frames_lost = 0
        self.on_deliver: Callable[[NodeId, Deliver, float], None] | None = None
        """When set, deliveries go here instead of into `NodeLog.delivered`."""
        self.on_disconnect: Callable[[NodeId, NodeId, float], None] | None = None
        self._events: list[tuple[float, int, int, NodeId, NodeId, object]] = []
        self._seq = itertools.count()
        self._max_frame = self.params.max_rpc_frame_size

    # ---- building the network --------------------------------------------------------------

    def add_router(self, node: NodeId, now: float, validator: Validator = accept_all) -> Router:
        """A node running a relay router (again, after `remove_node`: a fresh one)."""
        router = Router(
            params=self.params,
            score_params=self.score_params,
            thresholds=self.thresholds,
            validator=validator,
            rng=random.Random(self.rng.random()),
        )
        self.routers[node] = router
        self.logs.setdefault(node, NodeLog())
        self.adjacency.setdefault(node, {})
        first = now + self.rng.uniform(0, self.params.heartbeat_interval)
        self._push(first, _HEARTBEAT, node, node, router)
        return router

    def add_raw_node(self, node: NodeId) -> None:
        """A node without a router: tests write its frames with `inject`."""
        self.raw_nodes.add(node)
        self.logs.setdefault(node, NodeLog())
        self.adjacency.setdefault(node, {})

    def remove_node(self, node: NodeId, now: float) -> None:
        """The node leaves: its links close and its router (and all its state) is gone."""
        for other in list(self.adjacency.get(node, ())):
            self.disconnect(node, other, now)
        self.routers.pop(node, None)
        self.raw_nodes.discard(node)
        self.adjacency.pop(node, None)

    def online(self, node: NodeId) -> bool:
        return node in self.adjacency

    def connect(self, a: NodeId, b: NodeId, now: float) -> None:
        """`a` dialled `b`."""
        adjacency = self.adjacency
        if a == b or a not in adjacency or b not in adjacency or b in adjacency[a]:
            return
        link = LinkState(self.latency(self.rng), self.loss)
        adjacency[a][b] = link
        adjacency[b][a] = link
        if a in self.routers:
            self.routers[a].add_peer(b, now, outbound=True)
        if b in self.routers:
            self.routers[b].add_peer(a, now, outbound=False)
        self._drain(a, now)
        self._drain(b, now)

    def disconnect(self, a: NodeId, b: NodeId, now: float) -> None:
        links = self.adjacency.get(a)
        if links is None or links.pop(b, None) is None:
            return
        self.adjacency[b].pop(a, None)
        for x, y in ((a, b), (b, a)):
            if x in self.routers:
                self.routers[x].remove_peer(y, now)
                self._drain(x, now)
        if self.on_disconnect is not None:
            self.on_disconnect(a, b, now)

    def connected(self, a: NodeId, b: NodeId) -> bool:
        return b in self.adjacency.get(a, {})

    def degree(self, node: NodeId) -> int:
        return len(self.adjacency.get(node, {}))

    def random_topology(self, nodes: Sequence[NodeId], degree: int, now: float) -> None:
        """A random spanning tree (so the graph is connected) plus random extra links."""
        order = list(nodes)
        self.rng.shuffle(order)
        for i in range(1, len(order)):
            self.connect(order[i], order[self.rng.randrange(i)], now)
        degree = min(degree, len(nodes) - 1)
        for node in nodes:
            links = self.adjacency[node]
            while len(links) < degree:
                self.connect(node, self.rng.choice(nodes), now)

    def partition(self, groups: Sequence[Collection[NodeId]]) -> None:
        """Frames between different groups are lost until `heal`."""
        self.groups = {node: i for i, group in enumerate(groups) for node in group}

    def heal(self) -> None:
        self.groups = None

    # ---- acting ----------------------------------------------------------------------------

    def publish(self, node: NodeId, topic: str, data: bytes, now: float) -> int:
        reached = self.routers[node].publish(topic, data, now)
        self._drain(node, now)
        return reached

    def subscribe(self, node: NodeId, topic: str, now: float) -> None:
        self.routers[node].subscribe(topic, now)
        self._drain(node, now)

    def inject(self, source: NodeId, target: NodeId, frame: bytes, now: float) -> None:
        """Send a length-prefixed frame from `source` as if its router had written it."""
        self._send(source, target, frame, now)

    def schedule(self, when: float, action: Callable[[float], None]) -> None:
        """Run `action(when)` at simulated time `when`, in order with the network's events."""
        self._push(when, _CALL, None, None, action)

    async def run_for(self, duration: float) -> None:
        await self.run_until(trio.current_time() + duration)

    async def run_until(self, deadline: float) -> None:
        events = self._events
        pop = heapq.heappop
        while events and events[0][0] <= deadline:
            at = events[0][0]
            if at > trio.current_time():
                await trio.sleep_until(at)
            horizon = min(trio.current_time() + self.quantum, deadline)
            while events and events[0][0] <= horizon:
                when, _, kind, source, target, payload = pop(events)
                if kind == _RECEIVE:
                    self._receive(source, target, payload, when)  # type: ignore[arg-type]
                elif kind == _HEARTBEAT:
                    self._heartbeat(source, payload, when)  # type: ignore[arg-type]
                else:
                    payload(when)  # type: ignore[operator]
        if deadline > trio.current_time():
            await trio.sleep_until(deadline)

    # ---- internals -------------------------------------------------------------------------

    def _push(
        self, when: float, kind: int, source: NodeId, target: NodeId, payload: object
    ) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, source, target, payload))

    def _heartbeat(self, node: NodeId, router: Router, now: float) -> None:
        if self.routers.get(node) is not router:
            return  # the node left (or left and came back with a new router)
        router.heartbeat(now)
        self._drain(node, now)
        self._push(now + self.params.heartbeat_interval, _HEARTBEAT, node, node, router)

    def _drain(self, node: NodeId, now: float) -> None:
        router = self.routers.get(node)
        if router is None:
            return
        actions = router.take_actions()
        if not actions:
            return
        send = self._send
        for action in actions:
            kind = type(action)
            if kind is Send:
                send(node, action.peer, action.frame, now)  # type: ignore[union-attr]
            elif kind is Deliver:
                self._deliver(node, action, now)  # type: ignore[arg-type]
            elif kind is Disconnect:
                self.disconnect(node, action.peer, now)  # type: ignore[union-attr]

    def _deliver(self, node: NodeId, action: Deliver, now: float) -> None:
        if self.on_deliver is not None:
            self.on_deliver(node, action, now)
            return
        log = self.logs[node]
        if action.message_id in log.delivered:
            log.duplicate_deliveries += 1
        else:
            log.delivered[action.message_id] = now

    def _send(self, source: NodeId, target: NodeId, frame: bytes, now: float) -> None:
        links = self.adjacency.get(source)
        link = links.get(target) if links is not None else None
        if link is None:
            return
        self.frames_sent += 1
        log = self.logs[source]
        log.frames_sent += 1
        log.bytes_sent += len(frame)
        if _first_tag(frame) == _TAG_PUBLISH:
            log.message_bytes_sent += len(frame)
        groups = self.groups
        if (groups is not None and groups.get(source) != groups.get(target)) or (
            link.loss and self.rng.random() < link.loss
        ):
            self.frames_lost += 1
            return
        heapq.heappush(
            self._events, (now + link.latency, next(self._seq), _RECEIVE, source, target, frame)
        )

    def _receive(self, source: NodeId, target: NodeId, frame: bytes, now: float) -> None:
        links = self.adjacency.get(target)
        if links is None or source not in links:
            return
        log = self.logs[target]
        log.frames_received += 1
        log.bytes_received += len(frame)
        if target in self.raw_nodes:
            log.raw_frames.append(frame)
            return
        router = self.routers[target]
        for payload in self._payloads(frame):
            router.handle_rpc(source, payload, now)
        self._drain(target, now)

    def _payloads(self, frame: bytes) -> list[bytes]:
        """The RPCs in a frame: routers write exactly one per Send, so the common case is one
        length prefix covering the rest; anything else goes through a FrameDecoder."""
        size = 0
        shift = 0
        for used, byte in enumerate(frame[:3], 1):
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if used + size == len(frame) and size <= self._max_frame:
                    return [frame[used:]]
                break
            shift += 7
        try:
            return FrameDecoder(self._max_frame).feed(frame)
        except FramingError:
            return []


def _first_tag(frame: bytes) -> int:
    """The first protobuf tag after a frame's length prefix (-1 for a frame too short)."""
    for index in range(min(len(frame) - 1, 4)):
        if frame[index] < 0x80:
            return frame[index + 1]
    return -1
