"""The node a chat client runs in light mode: no relay, service nodes do it for us.

Receiving: filter v2 subscriptions for every content topic the messenger reads, held on two
service nodes at once (pinged, re-subscribed, replaced on failure; pushes deduplicated by
hash). When fewer nodes held them than wanted, a store catch-up fills the gap once they are
held again. Sending: light push v3 (v2 for nodes that only speak it) to the push nodes,
failing over to the next candidate. Catching up: the store client, as in relay mode.

Service nodes are the configured peers, then those peer exchange finds. Decisions live in
`chat.waku.light.core.LightCore` (sans-IO); this module only moves bytes. It has the shape
of `chat.client_node.ClientNode` (what `chat.messenger.node.MessengerNode` asks), so the
messenger runs on either.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.client_node import INBOX_SIZE, STORE_TIMEOUT, Received
from chat.config import DEFAULT_CLUSTER_ID, DEFAULT_SHARDS
from chat.errors import ConfigError
from chat.fleet import peer_id_of
from chat.waku.bandwidth import BandwidthMeter
from chat.waku.connectivity import Connectivity, ConnectivityOptions
from chat.waku.enr.waku_fields import Capability, RelayShards, node_enr
from chat.waku.filter.client import FilterClient
from chat.waku.filter.client_core import Criterion, FilterClientCore
from chat.waku.health_monitor import CatchUp, HealthService, OnReset
from chat.waku.host import ConnectionEvent, ConnectionEventKind, WakuHost, generate_node_key
from chat.waku.light.core import CatchUpFrom, LightCore, LightHealth
from chat.waku.lightpush.client import LightPushClient, PushReport
from chat.waku.lightpush.client_core import Verdict, verdict
from chat.waku.message import WakuMessage
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_exchange.client import request_peers
from chat.waku.peer_manager import DialSchedule
from chat.waku.peers import Service
from chat.waku.protected import ShardKeyPair, ShardPublicKey
from chat.waku.relay.core import NoPeersReached
from chat.waku.store.client import StoreClient
from chat.waku.topics import RelayShard

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from chat.waku.health import HealthSummary

log = logging.getLogger(__name__)

PUSH_TIME_LIMIT = 5.0
"""Seconds one light push request may take before the node counts as failed."""
PUSH_ATTEMPTS = 2
"""Rounds per push (the second after a second, on replacement nodes)."""
BACKGROUND_PUSHES = 256
"""Best-effort publishes (requests, syncs) waiting for the push worker, at most."""
INTEREST_POLL = 1.0
"""Seconds between looks at the topics the messenger reads."""
EXCHANGE_TIME_LIMIT = 10.0
CLOSE_SETTLE = 0.1
"""Seconds after a connection-closed event before asking whether any connection is left."""

Interest = Callable[[], Iterable[Criterion]]
"""(pubsub topic, content topic) pairs the messenger reads now."""


@dataclass(frozen=True)
class LightNodeConfig:
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    peers: tuple[str, ...] = ()
    """Service nodes (filter, light push, peer exchange); full multiaddrs."""
    store_peers: tuple[str, ...] = ()
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    key_pair: KeyPair = field(default_factory=generate_node_key)
    push_time_limit: float = PUSH_TIME_LIMIT
    filter_ping_interval: float = 60.0


class LightHealthService:
    """The connectivity's health monitor, with the catch-up the messenger sets kept for gap
    filling (the filter's outages are ours to notice, not the monitor's)."""

    def __init__(self, inner: HealthService) -> None:
        self.inner = inner
        self.catch_up: CatchUp | None = None

    def summary(self) -> HealthSummary:
        return self.inner.summary()

    def subscribe(self, buffer: int = 64) -> trio.MemoryReceiveChannel[HealthSummary]:
        return self.inner.subscribe(buffer)

    def set_catch_up(self, catch_up: CatchUp) -> None:
        self.catch_up = catch_up
        self.inner.set_catch_up(catch_up)

    def on_reset(self, callback: OnReset) -> None:
        self.inner.on_reset(callback)


class LightClientNode:
    mode = "light"

    def __init__(self, config: LightNodeConfig) -> None:
        self.config = config
        for addr in (*config.peers, *config.store_peers):
            if peer_id_of(addr) is None:
                raise ConfigError(f"{addr} is not a full multiaddr ending in /p2p/<peer id>")
        if not config.peers:
            raise ConfigError("light mode needs at least one service node (--peer)")
        self.node = Node(
            NodeConfig(
                listen_addrs=[Multiaddr(a) for a in config.listen_addrs],
                cluster_id=config.cluster_id,
                shards=config.shards,
                key_pair=config.key_pair,
            )
        )
        self.connectivity = Connectivity(
            self.node,
            ConnectivityOptions(
                peers=config.peers,
                store_peers=config.store_peers,
                required_services=(Service.STORE,),
                mdns=False,
                rendezvous=False,
            ),
        )
        self._health = LightHealthService(self.connectivity.health)
        self.connectivity.health.on_reset(self._after_reset)
        self.pubsub_topics = [RelayShard(config.cluster_id, s).pubsub_topic for s in config.shards]
        libp2p = self.node.host.libp2p
        service_ids = [str(peer_id_of(a)) for a in config.peers]
        self.filter = FilterClient(
            libp2p,
            [],
            FilterClientCore(service_ids, ping_interval=config.filter_ping_interval),
            accept=self._accept_push,
        )
        self.filter.changes = self._nudge
        self.push = LightPushClient(
            libp2p, [], max_attempts=PUSH_ATTEMPTS, time_limit=config.push_time_limit
        )
        self.core = LightCore(self.filter.core, self.push.pool)
        self.store = StoreClient(libp2p, timeout=STORE_TIMEOUT)
        self._inbox_send, self.inbox = trio.open_memory_channel[Received](INBOX_SIZE)
        self.inbox_drops = 0
        self._push_send, self._push_queue = trio.open_memory_channel[tuple[str, WakuMessage]](
            BACKGROUND_PUSHES
        )
        self._interest: Interest | None = None
        self._changed = trio.Event()
        self._state = trio.Event()
        """Set and replaced after every look at the state (waiters re-check their condition)."""
        self._filter_peers: list[str] = []
        self._push_peers: list[str] = []
        self._shard_keys: dict[str, ShardKeyPair] = {}
        """Protected shards we publish on: their messages leave signed (a light client relays
        nothing, so it checks nobody's signatures; the service nodes do)."""

    # ---- what the messenger asks ---------------------------------------------------------
    def pubsub_topic(self, shard: int) -> str:
        return RelayShard(self.config.cluster_id, shard).pubsub_topic

    @property
    def bandwidth(self) -> BandwidthMeter:
        return self.node.host.bandwidth

    @property
    def health(self) -> LightHealthService:
        return self._health

    def follow_interest(self, interest: Interest) -> None:
        """The messenger's topics, read again every INTEREST_POLL seconds."""
        self._interest = interest
        self._nudge()

    def light_health(self) -> LightHealth:
        return self.core.health()

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[LightClientNode]:
        await self.connectivity.mount()
        await self.node.mount(_LightService(self))
        async with self.node.run():
            yield self

    def full_multiaddrs(self) -> list[str]:
        return [str(a) for a in self.node.full_multiaddrs()]

    def join_shard(
        self,
        pubsub_topic: str,
        key_pair: ShardKeyPair | None = None,
        public_key: ShardPublicKey | None = None,
    ) -> None:
        """A community's shard: the filter subscriptions follow the messenger's watched
        topics there like anywhere else; with the shard's key pair what we push is signed
        (`public_key` alone changes nothing for a light client: it validates no relay
        traffic)."""
        if key_pair is not None:
            self._shard_keys[pubsub_topic] = key_pair
        else:
            self._shard_keys.pop(pubsub_topic, None)
        if pubsub_topic not in self.pubsub_topics:
            self.pubsub_topics.append(pubsub_topic)
        self._nudge()

    def _signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        key_pair = self._shard_keys.get(pubsub_topic)
        return message if key_pair is None else key_pair.sign(pubsub_topic, message)

    def signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        """`message` as `publish` pushes it (signing again gives the same signature)."""
        return self._signed(pubsub_topic, message)

    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        """Best effort (the caller's flow sends again): queued for the push worker; the push
        nodes held. Raises NoPeersReached with no push node at all or the queue full."""
        if not self.push.pool.active:
            raise NoPeersReached(pubsub_topic)
        held = self.core.push_held()
        try:
            self._push_send.send_nowait((pubsub_topic, self._signed(pubsub_topic, message)))
        except trio.WouldBlock:
            raise NoPeersReached(pubsub_topic) from None
        return held

    async def push_now(self, pubsub_topic: str, message: WakuMessage) -> PushReport:
        """Push and wait for the answers (failing over between nodes)."""
        return await self._push_signed(pubsub_topic, self._signed(pubsub_topic, message))

    async def _push_signed(self, pubsub_topic: str, message: WakuMessage) -> PushReport:
        report = await self.push.push(message, pubsub_topic)
        self._record_push(report)
        return report

    def relay_peers(self) -> dict[str, int]:
        """Light mode has no relay peers: the push nodes held stand for them (what a
        publish can reach)."""
        held = self.core.push_held()
        return {topic: held for topic in self.pubsub_topics}

    def store_peers(self) -> list[ID]:
        return self.connectivity.peers.store_peers()

    def record_store(self, peer: ID, ok: bool) -> None:
        self.connectivity.peers.record(peer, Service.STORE, ok)
        self.core.store_result(ok)
        self._nudge()

    def connected_peers(self) -> Sequence[ID]:
        return self.node.host.connected_peers()

    def connection_events(self) -> trio.MemoryReceiveChannel[ConnectionEvent]:
        return self.node.host.events.subscribe()

    def dial_schedule(self) -> DialSchedule:
        return self.connectivity.peers.dial_schedule()

    def dial_changes(self) -> trio.MemoryReceiveChannel[None]:
        return self.connectivity.peers.subscribe()

    async def redial_now(self) -> int:
        return await self.connectivity.peers.redial_now()

    async def wait_relay_peers(self, *, present: bool) -> None:
        """Returns once some push node is held (`present`), or none is."""
        while (self.core.push_held() > 0) != present:
            await self._state.wait()

    # ---- the driver ------------------------------------------------------------------------
    def _nudge(self) -> None:
        self._changed.set()

    def _accept_push(self, peer: str, criterion: Criterion) -> bool:
        accepted = self.core.accept_push(peer, criterion)
        if not accepted and peer in self.core.dropped:
            log.warning("light: dropped service node %s (pushes for topics never asked)", peer)
            self.filter.wake()
            self._nudge()
        return accepted

    async def _after_reset(self, reason: str) -> None:
        self.core.reset()
        self.filter.wake()
        self._nudge()

    def _record_push(self, report: PushReport) -> None:
        succeeded = [a.peer for a in report.attempts if a.succeeded]
        failed = [
            a.peer
            for a in report.attempts
            if not a.succeeded and verdict(a.status_code) is Verdict.REPLACE_AND_RETRY
        ]
        self.core.push_results(succeeded, failed)
        for attempt in report.attempts:
            if not attempt.succeeded:
                log.info(
                    "light push to %s failed (attempt %d): %s %s",
                    attempt.peer,
                    attempt.attempt,
                    attempt.status_code,
                    attempt.description,
                )
        self._nudge()

    def _refresh_interest(self) -> None:
        if self._interest is None:
            return
        wanted = set(self._interest())
        current = self.filter.core.wanted
        for criteria, change in (
            (wanted - current, self.filter.subscribe),
            (current - wanted, self.filter.unsubscribe),
        ):
            by_pubsub: dict[str, list[str]] = {}
            for pubsub, content in criteria:
                by_pubsub.setdefault(pubsub, []).append(content)
            for pubsub, topics in by_pubsub.items():
                change(pubsub, topics)

    def _log_changes(self) -> None:
        filter_peers = sorted(self.filter.core.active_peers)
        if filter_peers != self._filter_peers:
            log.info("light: filter nodes now %s (were %s)", filter_peers, self._filter_peers)
            self._filter_peers = filter_peers
        push_peers = list(self.push.pool.active)
        if push_peers != self._push_peers:
            log.info("light: push nodes now %s (were %s)", push_peers, self._push_peers)
            self._push_peers = push_peers

    async def drive(self, nursery: trio.Nursery) -> None:
        while True:
            now = trio.current_time()
            self._refresh_interest()
            gap = self.core.observe_filter(now)
            if gap is not None:
                nursery.start_soon(self._fill_gap, gap)
            if self.core.exchange_due(now):
                nursery.start_soon(self._exchange)
            self._log_changes()
            self._state.set()
            self._state = trio.Event()
            next_exchange = self.core.next_exchange()
            wake = min(now + INTEREST_POLL, math.inf if next_exchange is None else next_exchange)
            with trio.move_on_at(max(wake, now + 0.05)):
                await self._changed.wait()
            self._changed = trio.Event()

    async def follow_connections(self, nursery: trio.Nursery) -> None:
        """A service node in use whose last connection closed is replaced at once."""
        async with self.node.host.events.subscribe() as events:
            async for event in events:
                peer = event.peer_id.to_base58()
                if event.kind is ConnectionEventKind.OPENED:
                    self.core.reconnected(peer)
                    self._nudge()
                    continue
                nursery.start_soon(self._maybe_lost, event.peer_id)

    async def _maybe_lost(self, peer_id: ID) -> None:
        # py-libp2p tells of a closed connection before the swarm forgets it: a node that
        # went away still shows its connections for a moment.
        await trio.sleep(CLOSE_SETTLE)
        if self.node.host.libp2p.get_network().get_connections(peer_id):
            return
        peer = peer_id.to_base58()
        if self.core.lost(peer, trio.current_time()):
            log.warning("light: lost service node %s; failing over", peer)
            self.filter.wake()
            self._nudge()

    async def _fill_gap(self, gap: CatchUpFrom) -> None:
        catch_up = self._health.catch_up
        if catch_up is None:
            return
        log.info("light: filter held again; store catch-up for the gap from %.1f", gap.since)
        await catch_up(gap.since)

    async def forward_pushes(self) -> None:
        async for push in self.filter.messages:
            received = Received(
                push.pubsub_topic,
                push.message,
                push.message.hash(push.pubsub_topic),
                "filter",
            )
            try:
                self._inbox_send.send_nowait(received)
            except trio.WouldBlock:
                self.inbox_drops += 1  # the store scans find it
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    async def push_worker(self) -> None:
        # Signed when queued, not again here: a moderator's new description is queued under
        # the shard's old key (the key the shard's relays still check) just before the new
        # key pair takes its place; signing it again would have every relay refuse it.
        async for pubsub_topic, message in self._push_queue:
            report = await self._push_signed(pubsub_topic, message)
            if not report.succeeded:
                log.info("light push of a best-effort message failed on every node")

    async def _exchange(self) -> None:
        """Ask connected service nodes for more; keep the ones serving filter or push."""
        host: WakuHost = self.node.host
        for peer_text in list(self.core.candidates):
            peer = ID.from_base58(peer_text)
            if not host.libp2p.get_network().get_connections(peer):
                continue
            result = await request_peers(
                host.libp2p,
                peer,
                cluster_id=self.config.cluster_id,
                time_limit=EXCHANGE_TIME_LIMIT,
            )
            if not result.succeeded:
                continue
            for found in result.peers:
                if not (found.serves(Capability.FILTER) or found.serves(Capability.LIGHTPUSH)):
                    continue
                self.connectivity.found_by_peer_exchange(found)
                if self.core.add_candidate(found.peer_id.to_base58()):
                    log.info("light: service node %s found by peer exchange", found.peer_id)
            self.filter.wake()
            self._nudge()
            return
        self.core.exchange_unanswered(trio.current_time())
        self._nudge()


class _LightService:
    """Runs the light client's tasks under the node's nursery."""

    name = "light"

    def __init__(self, light: LightClientNode) -> None:
        self.light = light

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.light.filter.run)
            nursery.start_soon(self.light.forward_pushes)
            nursery.start_soon(self.light.follow_connections, nursery)
            nursery.start_soon(self.light.push_worker)
            nursery.start_soon(self.light.drive, nursery)
            task_status.started()


def own_enr(node: Node, capabilities: Capability) -> str:
    """The node's record (EIP-778, with its Waku fields) as `enr:` text, for /v1/health: what
    an operator pastes to find this client; "" when it cannot be made (no TCP address yet,
    or a key that is not secp256k1)."""
    host = node.host
    suffix = f"/p2p/{host.peer_id.to_base58()}"
    addrs = [Multiaddr(str(a).removesuffix(suffix)) for a in host.full_multiaddrs()]
    shards = RelayShards(node.config.cluster_id, node.config.shards)
    try:
        secret = host.key_pair.private_key.to_bytes()
        return node_enr(secret, 1, addrs, capabilities, shards).text
    except Exception as exc:  # EnrError, or a key type ENR v4 cannot sign with
        log.debug("no ENR for this node: %s", exc)
        return ""


def light_report_evidence(report: PushReport) -> dict[str, Any]:
    """A successful push as outbox evidence: which node took it, how many relay peers."""
    best = next(a for a in report.attempts if a.succeeded)
    return {"light_push": best.peer, "relay_peers": best.relay_peer_count}
