"""The node a chat client runs: relay on its shards, a store client, and an inbox.

A chinwag client is a full relay node (it publishes and receives through gossipsub on the
network's shards) that asks store nodes for proof and for what it missed. Everything relay
accepts is offered to a bounded inbox; when the messenger falls behind, messages are dropped
and counted, and the periodic store scan finds them again (nothing is lost for good).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.config import DEFAULT_CLUSTER_ID, DEFAULT_SHARDS
from chat.errors import ConfigError
from chat.fleet import peer_id_of
from chat.waku.bandwidth import BandwidthMeter
from chat.waku.connectivity import Connectivity, ConnectivityOptions
from chat.waku.discovery.bootstrap import BootstrapError, parse_bootstrap, pick_bootstrap
from chat.waku.discovery.mdns.wire import MDNS_PORT
from chat.waku.health_monitor import HealthService
from chat.waku.host import ConnectionEvent, generate_node_key
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_manager import DialSchedule
from chat.waku.peers import Service
from chat.waku.protected import ShardKeyPair, ShardPublicKey
from chat.waku.relay.core import Router
from chat.waku.relay.faults import RelayFaults
from chat.waku.relay.service import RelayService
from chat.waku.store.client import StoreClient
from chat.waku.topics import InvalidPubsubTopic, RelayShard
from chat.waku.validation import RelayValidator

log = logging.getLogger(__name__)

INBOX_SIZE = 4096
STORE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Received:
    pubsub_topic: str
    message: WakuMessage
    msg_hash: bytes
    via: str
    """'relay' or 'store'."""


@dataclass(frozen=True)
class ClientNodeConfig:
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    key_pair: KeyPair = field(default_factory=generate_node_key)
    faults: RelayFaults | None = None
    mdns: bool | None = None
    """LAN discovery; None: on when no peer is configured (the no-fleet default)."""
    mdns_interfaces: tuple[str, ...] | None = None
    """IPv4 addresses to multicast on; None: loopback and the default route's address."""
    mdns_port: int = MDNS_PORT
    clock_ns: Callable[[], int] = now_ns
    """The relay validator's clock (the messenger's, so a lab client's skewed clock judges
    timestamps as a skewed machine would)."""


class ClientNode:
    def __init__(self, config: ClientNodeConfig) -> None:
        self.config = config
        for addr in (*config.peers, *config.store_peers):
            if peer_id_of(addr) is None:
                raise ConfigError(f"{addr} is not a full multiaddr ending in /p2p/<peer id>")
        self.node = Node(
            NodeConfig(
                listen_addrs=[Multiaddr(a) for a in config.listen_addrs],
                cluster_id=config.cluster_id,
                shards=config.shards,
                key_pair=config.key_pair,
            )
        )
        known = bool(config.peers or config.store_peers)
        # Peers are dialled, kept and replaced by the peer manager, not as static peers.
        self.connectivity = Connectivity(
            self.node,
            ConnectivityOptions(
                peers=config.peers,
                store_peers=config.store_peers,
                required_services=(Service.STORE,) if known else (),
                mdns=(not known) if config.mdns is None else config.mdns,
                mdns_interfaces=config.mdns_interfaces,
                mdns_port=config.mdns_port,
            ),
        )
        self.pubsub_topics = [RelayShard(config.cluster_id, s).pubsub_topic for s in config.shards]
        validator = RelayValidator(clock=config.clock_ns)
        self.relay = RelayService(self.pubsub_topics, validator=validator, faults=config.faults)
        self.store = StoreClient(self.node.host.libp2p, timeout=STORE_TIMEOUT)
        self._inbox_send, self.inbox = trio.open_memory_channel[Received](INBOX_SIZE)
        self.inbox_drops = 0
        self.relay.add_sink(self._on_relay)
        # Online means our messages reach the network: a mesh peer on every shard.
        self.connectivity.health.follow_relay(
            self.relay, {s: self.pubsub_topic(s) for s in config.shards}
        )

    def pubsub_topic(self, shard: int) -> str:
        return RelayShard(self.config.cluster_id, shard).pubsub_topic

    @property
    def bandwidth(self) -> BandwidthMeter:
        return self.node.host.bandwidth

    def _on_relay(self, pubsub_topic: str, message: WakuMessage, data: bytes) -> None:
        try:
            self._inbox_send.send_nowait(
                Received(pubsub_topic, message, message.hash(pubsub_topic), "relay")
            )
        except trio.WouldBlock:
            self.inbox_drops += 1
            if self.inbox_drops == 1 or self.inbox_drops % 1000 == 0:
                log.warning(
                    "messenger is behind; %d relay messages left to store scans", self.inbox_drops
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ClientNode]:
        await self.node.mount(self.relay)
        await self.connectivity.mount()
        async with self.node.run():
            yield self

    def full_multiaddrs(self) -> list[str]:
        return [str(a) for a in self.node.full_multiaddrs()]

    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        """Peers reached; raises NoPeersReached, or ValueError when the message is refused."""
        return self.relay.publish(pubsub_topic, message)

    def signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        """`message` as `publish` sends it (signed on a protected shard we hold the key of)."""
        return self.relay.signer.prepare(pubsub_topic, message)

    def join_shard(
        self,
        pubsub_topic: str,
        key_pair: ShardKeyPair | None = None,
        public_key: ShardPublicKey | None = None,
    ) -> None:
        """Relay a community's shard from now on (or switch its key): with its key pair we
        sign what we publish there and check what others relay against it; with only the
        public key we check; with neither it is an unprotected shard."""
        if key_pair is not None:
            self.relay.sign_with(pubsub_topic, key_pair)
        elif public_key is not None:
            self.relay.protect(pubsub_topic, public_key)
        else:
            self.relay.subscribe(pubsub_topic)
        if pubsub_topic not in self.pubsub_topics:
            self.pubsub_topics.append(pubsub_topic)
            self.connectivity.follow_shards(self._shards())

    def _shards(self) -> list[int]:
        shards = []
        for topic in self.pubsub_topics:
            try:
                shard = RelayShard.parse(topic)
            except InvalidPubsubTopic:
                continue
            if shard.cluster_id == self.config.cluster_id:
                shards.append(shard.shard_id)
        return shards

    def bootstrap_addresses(self, pubsub_topic: str, limit: int, max_length: int) -> list[str]:
        """Full multiaddrs of connected peers relaying `pubsub_topic`, then of rendezvous
        points: a hint for someone whose fleet does not serve that shard (a community link)."""
        host = self.node.host
        on_shard = {str(peer) for peer in self.relay.router.topic_peers.get(pubsub_topic, ())}
        connected = host.connected_peers()
        rendezvous = self.connectivity.rendezvous
        points = set(rendezvous.points(host)) if rendezvous is not None else set()
        ordered = [p for p in connected if str(p) in on_shard]
        ordered += [p for p in connected if p in points and str(p) not in on_shard]
        store = host.libp2p.get_peerstore()

        def addresses(peer: ID) -> list[Multiaddr]:
            known = self.connectivity.peers.addresses_of(peer)
            try:
                return known + [a for a in store.addrs(peer) if a not in known]
            except Exception:  # the peerstore raises when it has no addresses
                return known

        return pick_bootstrap(((p, addresses(p)) for p in ordered), limit, max_length)

    def add_bootstrap(self, pubsub_topic: str, addresses: Sequence[str]) -> int:
        """Hand bootstrap hints for `pubsub_topic` to the peer manager, which dials them
        while the shard lacks relay peers; a bad hint is logged and skipped. Returns how
        many were taken."""
        try:
            shard = RelayShard.parse(pubsub_topic).shard_id
        except InvalidPubsubTopic:
            return 0
        taken = 0
        for text in addresses:
            try:
                peer, addr = parse_bootstrap(text)
            except BootstrapError as exc:
                log.info("bootstrap hint skipped: %s", exc)
                continue
            # A peer we know already keeps the shards it told us (metadata) over a hint's.
            known = self.connectivity.peers.core.knows(str(peer))
            self.connectivity.peers.add_discovered(peer, [addr], shards=None if known else [shard])
            taken += 1
        return taken

    def relay_peers(self) -> dict[str, int]:
        topic_peers: dict[str, Any] = self.relay.router.topic_peers
        return {topic: len(topic_peers.get(topic, ())) for topic in self.pubsub_topics}

    def store_peers(self) -> list[ID]:
        """Connected store nodes, best first (the peer manager's score: try them in order)."""
        return self.connectivity.peers.store_peers()

    def record_store(self, peer: ID, ok: bool) -> None:
        self.connectivity.peers.record(peer, Service.STORE, ok)

    def connected_peers(self) -> Sequence[ID]:
        return self.node.host.connected_peers()

    @property
    def health(self) -> HealthService:
        return self.connectivity.health

    def connection_events(self) -> trio.MemoryReceiveChannel[ConnectionEvent]:
        return self.node.host.events.subscribe()

    def dial_schedule(self) -> DialSchedule:
        """When the next dial is due while offline, dials under way, peers known."""
        return self.connectivity.peers.dial_schedule()

    def dial_changes(self) -> trio.MemoryReceiveChannel[None]:
        """A nudge when dials start or end, or connections change."""
        return self.connectivity.peers.subscribe()

    async def redial_now(self) -> int:
        """Dial every known peer not connected now; the dials under way afterwards."""
        return await self.connectivity.peers.redial_now()

    async def wait_relay_peers(self, *, present: bool) -> None:
        """Returns once some relay peer is on one of our topics (`present`), or none is."""
        topics = tuple(self.pubsub_topics)

        def some(router: Router) -> bool:
            return any(router.topic_peers.get(topic) for topic in topics)

        await self.relay.driver.wait_until(some if present else lambda router: not some(router))
