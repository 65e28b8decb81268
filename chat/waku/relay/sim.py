"""Many relay routers in one process over a simulated network (latency, loss, partitions).

A discrete-event loop on trio's clock: frames and heartbeats are events in a heap; the loop
sleeps until the next one, so under `trio.testing.MockClock(autojump_threshold=0)` a minute
of network time takes as long as the routers' CPU work. Each event is handled with its own
timestamp as `now`, so batching nearby events never changes what the routers see.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import trio

from chat.waku.framing import FrameDecoder
from chat.waku.relay.core import Deliver, Disconnect, Router, Send
from chat.waku.relay.params import GossipParams, ScoreParams, Thresholds
from chat.waku.relay.verdict import Validator, accept_all

NodeId = Hashable
Link = frozenset[NodeId]


@dataclass(slots=True)
class LinkState:
    latency: float
    loss: float


@dataclass(slots=True)
class NodeLog:
    delivered: dict[bytes, float] = field(default_factory=dict)
    """Message id -> time of first delivery to the app."""
    duplicate_deliveries: int = 0
    raw_frames: list[bytes] = field(default_factory=list)
    """Frames received by a raw (non-router) node."""


class SimNetwork:
    def __init__(
        self,
        *,
        seed: int = 1,
        params: GossipParams | None = None,
        score_params: ScoreParams | None = None,
        thresholds: Thresholds | None = None,
        latency: tuple[float, float] = (0.005, 0.050),
        loss: float = 0.0,
        quantum: float = 0.002,
    ) -> None:
        self.rng = random.Random(seed)
        self.params = params or GossipParams()
        self.score_params = score_params
        self.thresholds = thresholds
        self.latency = latency
        self.loss = loss
        self.quantum = quantum
        self.routers: dict[NodeId, Router] = {}
        self.raw_nodes: set[NodeId] = set()
        self.logs: dict[NodeId, NodeLog] = {}
        self.links: dict[Link, LinkState] = {}
        self.groups: dict[NodeId, int] | None = None
        self.frames_sent = 0
        self.frames_lost = 0
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._decoder = FrameDecoder(self.params.max_rpc_frame_size)

    # ---- building the network --------------------------------------------------------------

    def add_router(self, node: NodeId, now: float, validator: Validator = accept_all) -> Router:
        router = Router(
            params=self.params,
            score_params=self.score_params,
            thresholds=self.thresholds,
            validator=validator,
            rng=random.Random(self.rng.random()),
        )
        self.routers[node] = router
        self.logs[node] = NodeLog()
        first = now + self.rng.uniform(0, self.params.heartbeat_interval)
        self._schedule(first, lambda t: self._heartbeat(node, t))
        return router

    def add_raw_node(self, node: NodeId) -> None:
        """A node without a router: tests write its frames with `inject`."""
        self.raw_nodes.add(node)
        self.logs[node] = NodeLog()

    def connect(self, a: NodeId, b: NodeId, now: float) -> None:
        """`a` dialled `b`."""
        link = frozenset((a, b))
        if link in self.links or a == b:
            return
        self.links[link] = LinkState(self.rng.uniform(*self.latency), self.loss)
        if a in self.routers:
            self.routers[a].add_peer(b, now, outbound=True)
        if b in self.routers:
            self.routers[b].add_peer(a, now, outbound=False)
        self._drain(a, now)
        self._drain(b, now)

    def disconnect(self, a: NodeId, b: NodeId, now: float) -> None:
        if self.links.pop(frozenset((a, b)), None) is None:
            return
        for x, y in ((a, b), (b, a)):
            if x in self.routers:
                self.routers[x].remove_peer(y, now)
                self._drain(x, now)

    def connected(self, a: NodeId, b: NodeId) -> bool:
        return frozenset((a, b)) in self.links

    def random_topology(self, nodes: list[NodeId], degree: int, now: float) -> None:
        """A random spanning tree (so the graph is connected) plus random extra links."""
        order = nodes[:]
        self.rng.shuffle(order)
        for i in range(1, len(order)):
            self.connect(order[i], order[self.rng.randrange(i)], now)
        for node in nodes:
            while sum(1 for link in self.links if node in link) < degree:
                other = self.rng.choice(nodes)
                self.connect(node, other, now)

    def partition(self, groups: list[set[NodeId]]) -> None:
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
        """Send a length-prefixed frame from a raw node as if it came over the link."""
        self._send(source, target, frame, now)

    async def run_for(self, duration: float) -> None:
        await self.run_until(trio.current_time() + duration)

    async def run_until(self, deadline: float) -> None:
        events = self._events
        while events and events[0][0] <= deadline:
            at = events[0][0]
            if at > trio.current_time():
                await trio.sleep_until(at)
            horizon = trio.current_time() + self.quantum
            while events and events[0][0] <= min(horizon, deadline):
                when, _, handler = heapq.heappop(events)
                handler(when)
        if deadline > trio.current_time():
            await trio.sleep_until(deadline)

    # ---- internals -------------------------------------------------------------------------

    def _schedule(self, when: float, handler: Callable[[float], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), handler))

    def _heartbeat(self, node: NodeId, now: float) -> None:
        router = self.routers.get(node)
        if router is None:
            return
        router.heartbeat(now)
        self._drain(node, now)
        self._schedule(now + self.params.heartbeat_interval, lambda t: self._heartbeat(node, t))

    def _drain(self, node: NodeId, now: float) -> None:
        router = self.routers.get(node)
        if router is None:
            return
        log = self.logs[node]
        for action in router.take_actions():
            if isinstance(action, Send):
                self._send(node, action.peer, action.frame, now)
            elif isinstance(action, Deliver):
                if action.message_id in log.delivered:
                    log.duplicate_deliveries += 1
                else:
                    log.delivered[action.message_id] = now
            elif isinstance(action, Disconnect):
                self.disconnect(node, action.peer, now)

    def _send(self, source: NodeId, target: NodeId, frame: bytes, now: float) -> None:
        link = self.links.get(frozenset((source, target)))
        if link is None:
            return
        self.frames_sent += 1
        groups = self.groups
        if (groups is not None and groups.get(source) != groups.get(target)) or (
            link.loss and self.rng.random() < link.loss
        ):
            self.frames_lost += 1
            return
        self._schedule(now + link.latency, lambda t: self._receive(source, target, frame, t))

    def _receive(self, source: NodeId, target: NodeId, frame: bytes, now: float) -> None:
        if frozenset((source, target)) not in self.links:
            return
        if target in self.raw_nodes:
            self.logs[target].raw_frames.append(frame)
            return
        router = self.routers[target]
        for payload in self._decoder.feed(frame):
            router.handle_rpc(source, payload, now)
        self._drain(target, now)
