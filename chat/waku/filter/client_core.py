"""Filter v2 light-client state, sans-IO: which service nodes hold our subscriptions.

Strategy (reliability.md §4.2): keep subscriptions on 2 service nodes, ping each every 60 s;
a failed ping or a 404 ("peer has no subscriptions") re-subscribes; a node is replaced after
2 consecutive failed pings or 1 failed subscribe. Pushes arriving from both nodes are
deduplicated by message hash. Time comes in as `now`; actions go out for a driver to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from chat.waku.filter.server_core import MAX_CONTENT_TOPICS_PER_REQUEST, SeenHashes
from chat.waku.filter.wire import SubscribeType

WANTED_NODES = 2
PING_INTERVAL = 60.0
MAX_PING_FAILURES = 2
REPLACED_NODE_COOLDOWN = 60.0
"""A replaced node may be picked again after this long, if no other candidate is left."""
DEAF_RETRY = 5.0
"""While no node holds our subscriptions at all, a replaced node is tried again this soon."""
DEDUPE_WINDOW = 300.0
MAX_REMEMBERED_HASHES = 100_000

Criterion = tuple[str, str]


class PingResult(Enum):
    OK = "ok"
    NOT_SUBSCRIBED = "not_subscribed"
    """404: the node lost our subscription (restart, TTL); not the node's fault."""
    FAILED = "failed"
    """Timeout, broken stream or any other status."""


class _Phase(Enum):
    IDLE = "idle"
    BUSY = "busy"  # a request to this node is in flight


# The rules, as data: what a ping result does to a node.
# (counts as a failure, forget what the node holds so it is re-subscribed)
_PING_RULES: dict[PingResult, tuple[bool, bool]] = {
    PingResult.OK: (False, False),
    PingResult.NOT_SUBSCRIBED: (False, True),
    PingResult.FAILED: (True, True),
}


@dataclass(frozen=True, slots=True)
class Action:
    """A request for the driver to send to one service node."""

    peer: str
    kind: SubscribeType
    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()


@dataclass(slots=True)
class _Node:
    peer: str
    phase: _Phase = _Phase.IDLE
    held: set[Criterion] = field(default_factory=set)
    """Criteria this node confirmed with a 200."""
    pending: tuple[Action, frozenset[Criterion]] | None = None
    next_ping: float = 0.0
    ping_failures: int = 0


class FilterClientCore:
    def __init__(
        self,
        candidates: Sequence[str],
        *,
        wanted_nodes: int = WANTED_NODES,
        ping_interval: float = PING_INTERVAL,
        max_ping_failures: int = MAX_PING_FAILURES,
        replaced_node_cooldown: float = REPLACED_NODE_COOLDOWN,
        dedupe_window: float = DEDUPE_WINDOW,
        max_remembered_hashes: int = MAX_REMEMBERED_HASHES,
    ) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        self.wanted_nodes = wanted_nodes
        self.ping_interval = ping_interval
        self.max_ping_failures = max_ping_failures
        self.replaced_node_cooldown = replaced_node_cooldown
        self.wanted: set[Criterion] = set()
        self._nodes: dict[str, _Node] = {}
        self._benched: dict[str, float] = {}
        """Replaced nodes and when they may be used again."""
        self._seen = SeenHashes(dedupe_window, max_remembered_hashes)
        self.replacements = 0
        self.duplicates_dropped = 0

    # -- what the application wants ---------------------------------------------------------

    def subscribe(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        self.wanted |= {(pubsub_topic, topic) for topic in content_topics}

    def unsubscribe(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        self.wanted -= {(pubsub_topic, topic) for topic in content_topics}

    @property
    def active_peers(self) -> list[str]:
        return list(self._nodes)

    @property
    def busy_peers(self) -> list[str]:
        """Nodes with a request in flight."""
        return [peer for peer, node in self._nodes.items() if node.phase is _Phase.BUSY]

    def held_by(self, peer: str) -> frozenset[Criterion]:
        node = self._nodes.get(peer)
        return frozenset(node.held) if node else frozenset()

    # -- what the driver should do now --------------------------------------------------------

    def due(self, now: float) -> list[Action]:
        """Requests to send now; each node has at most one in flight."""
        self._fill(now)
        actions = []
        for node in self._nodes.values():
            if node.phase is _Phase.BUSY:
                continue
            action = self._next_action(node, now)
            if action is not None:
                node.phase = _Phase.BUSY
                actions.append(action)
        return actions

    def next_wakeup(self, now: float) -> float | None:
        """When `due` may next return something without any new event."""
        times = [n.next_ping for n in self._nodes.values() if n.held and n.phase is _Phase.IDLE]
        if len(self._nodes) < self.wanted_nodes and self._benched:
            times.append(min(self._released_at(peer) for peer in self._benched))
        return min(times) if times else None

    def _released_at(self, peer: str) -> float:
        """When a benched node may be used again: sooner while no node is held at all (a
        client that hears nothing keeps trying the nodes it has, every DEAF_RETRY s)."""
        until = self._benched[peer]
        if self._nodes:
            return until
        return min(until, until - self.replaced_node_cooldown + DEAF_RETRY)

    def _fill(self, now: float) -> None:
        for peer in self.candidates:
            if len(self._nodes) >= self.wanted_nodes:
                return
            if peer in self._nodes:
                continue
            if peer not in self._benched or self._released_at(peer) <= now:
                self._benched.pop(peer, None)
                self._nodes[peer] = _Node(peer)

    def _next_action(self, node: _Node, now: float) -> Action | None:
        extra = node.held - self.wanted
        missing = self.wanted - node.held
        for criteria, kind in (
            (extra, SubscribeType.UNSUBSCRIBE),
            (missing, SubscribeType.SUBSCRIBE),
        ):
            if criteria:
                pubsub = min(p for p, _ in criteria)
                topics = sorted(c for p, c in criteria if p == pubsub)
                topics = topics[:MAX_CONTENT_TOPICS_PER_REQUEST]
                action = Action(node.peer, kind, pubsub, tuple(topics))
                node.pending = (action, frozenset((pubsub, t) for t in topics))
                return action
        if node.held and node.next_ping <= now:
            action = Action(node.peer, SubscribeType.SUBSCRIBER_PING)
            node.pending = (action, frozenset())
            return action
        return None

    # -- what happened ------------------------------------------------------------------------

    def on_subscribe_result(self, peer: str, ok: bool, now: float) -> None:
        """The answer to a SUBSCRIBE or UNSUBSCRIBE action (ok = status 200)."""
        node = self._take_pending(peer)
        if node is None or node.pending is None:
            return
        action, criteria = node.pending
        node.pending = None
        if action.kind is SubscribeType.UNSUBSCRIBE:
            node.held -= criteria  # best effort: the node forgets them by TTL anyway
            return
        if not ok:
            self._replace(node, now)
            return
        node.held |= criteria
        node.next_ping = now + self.ping_interval

    def on_ping_result(self, peer: str, result: PingResult, now: float) -> None:
        node = self._take_pending(peer)
        if node is None:
            return
        node.pending = None
        is_failure, resubscribe = _PING_RULES[result]
        node.ping_failures = node.ping_failures + 1 if is_failure else 0
        if node.ping_failures >= self.max_ping_failures:
            self._replace(node, now)
            return
        if resubscribe:
            node.held.clear()
        node.next_ping = now + self.ping_interval

    def lost(self, peer: str, now: float) -> bool:
        """Our connection to a node in use is gone: replace it now, not after failed pings.
        It goes to the back of the line without a cool-down: after a reset that closed every
        connection (a sleep, a network change) it is the one to subscribe again, and a node
        that is really gone fails that subscribe and is benched then. True if it was in use."""
        if self._nodes.pop(peer, None) is None:
            return False
        self.candidates.remove(peer)
        self.candidates.append(peer)
        self.replacements += 1
        return True

    def unbench(self) -> None:
        """Every candidate may be used again at once (after a reset dropped all connections,
        failures from before it say nothing about the nodes)."""
        self._benched.clear()
        for node in self._nodes.values():
            node.ping_failures = 0

    def forget(self, peer: str) -> None:
        """Stop using a node at once (it misbehaved); it is not a candidate any more."""
        self._nodes.pop(peer, None)
        self._benched.pop(peer, None)
        if peer in self.candidates:
            self.candidates.remove(peer)

    def _take_pending(self, peer: str) -> _Node | None:
        node = self._nodes.get(peer)
        if node is not None:
            node.phase = _Phase.IDLE
        return node

    def _replace(self, node: _Node, now: float) -> None:
        del self._nodes[node.peer]
        self._benched[node.peer] = now + self.replaced_node_cooldown
        # Later candidates first: move the failed node to the back of the line.
        self.candidates.remove(node.peer)
        self.candidates.append(node.peer)
        self.replacements += 1

    # -- pushes -------------------------------------------------------------------------------

    def is_new(self, message_hash: bytes, now: float) -> bool:
        """False for a message already delivered (the other node pushes it too)."""
        if self._seen.check_and_add(message_hash, now):
            self.duplicates_dropped += 1
            return False
        return True
