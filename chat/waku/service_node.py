"""A full service node from one config object: relay, plus store, filter, light push and
metrics as asked. `chinwag node` and the tests build nodes only through here.

Wiring (relay is always on):
- every message relay accepts (relayed to us or light-pushed through us) goes to the archive
  writer (store) and to the filter server's subscribers;
- light push publishes through relay: no relay peer is 505, a message our own validator
  refuses is 420, a pubsub topic this node does not relay is 421; a request without a
  pubsub topic is autosharded over the node's shards (see `autoshard_topic`);
- the archive is written by one task fed by a bounded queue (relay never waits for the
  disk), retention runs every `retention_interval`; a full disk is logged, counted and shown
  on /metrics while the node keeps relaying and answering queries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from multiaddr import Multiaddr

from chat.waku.bandwidth import Line, Snapshot
from chat.waku.enr.waku_fields import Capability, RelayShards
from chat.waku.filter.server import FilterServer
from chat.waku.inbound_gate import InboundGate
from chat.waku.lightpush.server import LightPushServer
from chat.waku.lightpush.server_core import Publish, PublishRejected, ShardFor
from chat.waku.lightpush.wire import LightPushStatus
from chat.waku.message import WakuMessage, now_ns
from chat.waku.metrics import Metric, MetricsServer, Sample
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_exchange.service import PeerExchangeServer
from chat.waku.protected import ShardPublicKey
from chat.waku.ratelimit import RateLimit, limiter_for, rate_limits_from_flags
from chat.waku.relay.core import DuplicateMessage, NoPeersReached
from chat.waku.relay.faults import RelayFaults
from chat.waku.relay.metrics import RelayCounters
from chat.waku.relay.service import RelayService
from chat.waku.server_gate import ServerGate
from chat.waku.store.archiver import DEFAULT_RETENTION_INTERVAL, ArchiveOutcome, MessageArchiver
from chat.waku.store.server import StoreServer
from chat.waku.sync.service import SyncOptions, SyncService, sync_metrics
from chat.waku.topics import RelayShard, TopicError, autoshard, format_pubsub_topic
from chat.waku.validation import RelayValidator
from storage.archive import Archive, RetentionPolicy
from storage.archive.factory import open_archive

log = logging.getLogger(__name__)

ARCHIVE_QUEUE = 4096
"""Relay messages waiting for the archive writer; beyond that they are dropped and counted
(the archive is behind: a slow disk, or a flood)."""
DEFAULT_RETENTION_AGE_NS = 7 * 24 * 3600 * 10**9
DEFAULT_RETENTION_BYTES = 1_000_000_000
DEFAULT_RETENTION = RetentionPolicy(
    max_age_ns=DEFAULT_RETENTION_AGE_NS, max_bytes=DEFAULT_RETENTION_BYTES
)
"""A week of history in at most 1 GB: anyone may publish, so an archive without limits
fills the disk (measured: about 17 MB/s through light push)."""


@dataclass(frozen=True)
class StoreOptions:
    archive_path: Path
    retention: RetentionPolicy = DEFAULT_RETENTION
    retention_interval: float = DEFAULT_RETENTION_INTERVAL
    archive_url: str | None = None
    """A postgresql:// URL: archive in PostgreSQL instead of the SQLite file `archive_path`."""

    @property
    def archive_location(self) -> str | Path:
        return self.archive_url if self.archive_url is not None else self.archive_path


@dataclass(frozen=True)
class ServiceNodeConfig:
    node: NodeConfig
    protected: Mapping[str, ShardPublicKey] = field(default_factory=dict)
    store: StoreOptions | None = None
    sync: SyncOptions | None = None
    """Waku Sync with other store nodes (needs `store`); None: off."""
    filter: bool = False
    lightpush: bool = False
    peer_exchange: bool = True
    """Serve peer exchange (and learn records from our peers to serve)."""
    announce: tuple[Multiaddr, ...] = ()
    """Addresses the node's record gives instead of its listen addresses (a node behind NAT
    or a proxy: its public address, a DNS name, a wss front); empty: the listen addresses."""
    rate_limits: Mapping[str, RateLimit | None] = field(
        default_factory=lambda: rate_limits_from_flags(())
    )
    """Per protocol (`store`, `filter`, `lightpush`, `px`); None is unlimited."""
    metrics: tuple[str, int] | None = None
    """(address, port) for the Prometheus endpoint; port 0 picks a free one."""
    archive_queue: int = ARCHIVE_QUEUE
    faults: RelayFaults | None = None
    """Fault injection: outgoing relay frames this node drops (tests, `--drop-frames`)."""


def capabilities_of(config: ServiceNodeConfig) -> Capability:
    """The `waku2` bits of the node's record: what it serves."""
    capabilities = Capability.RELAY
    if config.store is not None:
        capabilities |= Capability.STORE
    if config.filter:
        capabilities |= Capability.FILTER
    if config.lightpush:
        capabilities |= Capability.LIGHTPUSH
    return capabilities


def with_protected_shards(
    node_config: NodeConfig, protected: Mapping[str, ShardPublicKey]
) -> NodeConfig:
    """`node_config` serving its protected shards too: protecting a shard means relaying it.
    Raises ValueError for a protected pubsub topic outside the node's cluster."""
    shards = list(node_config.shards)
    for topic in protected:
        shard = RelayShard.parse(topic)
        if shard.cluster_id != node_config.cluster_id:
            raise ValueError(
                f"protected shard {topic} is not in this node's cluster {node_config.cluster_id}"
            )
        if shard.shard_id not in shards:
            shards.append(shard.shard_id)
    return replace(node_config, shards=tuple(shards))


def relay_service_for(
    node_config: NodeConfig,
    protected: Mapping[str, ShardPublicKey] | None = None,
    faults: RelayFaults | None = None,
) -> RelayService:
    topics = [RelayShard(node_config.cluster_id, s).pubsub_topic for s in node_config.shards]
    topics.extend(t for t in (protected or {}) if t not in topics)
    validator = RelayValidator(clock=now_ns, protected=protected or {})
    return RelayService(topics, validator=validator, faults=faults)


def autoshard_topic(cluster_id: int, shards: tuple[int, ...]) -> ShardFor:
    """Light push's `shard_for`: autosharding (topics.autoshard) in a network whose shards are
    0..N-1, N being how many shards this node serves — with the default shards (0, 1), N = 2,
    as js-waku and nwaku compute it for a 2-shard network."""
    count = len(shards)

    def shard_for(content_topic: str) -> str | None:
        try:
            return autoshard(content_topic, cluster_id, count).pubsub_topic
        except TopicError:
            return None

    return shard_for


def relay_publisher(relay: RelayService) -> Publish:
    """Light push's `publish`, through relay, with relay's refusals as light push statuses."""

    def publish(pubsub_topic: str, message: WakuMessage) -> int:
        if pubsub_topic not in relay.topics:
            raise PublishRejected(
                LightPushStatus.UNSUPPORTED_PUBSUB_TOPIC,
                f"this node does not relay on {pubsub_topic[:64]}",
            )
        try:
            return relay.publish(pubsub_topic, message)
        except (NoPeersReached, DuplicateMessage):
            # nwaku answers "no peers" for a duplicate too: gossipsub reaches nobody with it.
            return 0
        except ValueError as exc:  # our own validator, the signer or the size limit refused
            raise PublishRejected(LightPushStatus.INVALID_MESSAGE, str(exc)) from None

    return publish


ArchiveSink = Callable[[str, WakuMessage, ArchiveOutcome], None]


class ArchiveWriter:
    """A node service that feeds relay messages to the archiver from a bounded queue, and
    runs retention. `offer` is the relay sink: it never blocks. Sinks added with `add_sink`
    hear every message's archive outcome once it is written (or refused)."""

    name = "archive"

    def __init__(
        self,
        archiver: MessageArchiver,
        *,
        queue: int = ARCHIVE_QUEUE,
        retention_interval: float = DEFAULT_RETENTION_INTERVAL,
    ) -> None:
        self.archiver = archiver
        self.retention_interval = retention_interval
        self._send, self._receive = trio.open_memory_channel[tuple[str, WakuMessage, bytes]](queue)
        self.dropped = 0
        self.written = 0
        self._sinks: list[ArchiveSink] = []

    def add_sink(self, sink: ArchiveSink) -> None:
        """`sink(pubsub_topic, message, outcome)` after each message the archiver handled."""
        self._sinks.append(sink)

    def offer(self, pubsub_topic: str, message: WakuMessage, data: bytes) -> None:
        try:
            self._send.send_nowait((pubsub_topic, message, data))
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("archive is behind; %d relay messages not archived", self.dropped)

    @property
    def pending(self) -> int:
        return self._receive.statistics().current_buffer_used

    async def serve(self, host: Any = None, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.archiver.run_retention, self.retention_interval)
            task_status.started()
            async for pubsub_topic, message, data in self._receive:
                outcome = await self.archiver.archive_message(pubsub_topic, message, data)
                self.written += 1
                for sink in self._sinks:
                    sink(pubsub_topic, message, outcome)


class ServiceNode:
    """The composed node. Build it, then `async with service_node.run():`."""

    def __init__(self, config: ServiceNodeConfig) -> None:
        """Raises storage.archive.ArchiveError when the archive cannot be opened."""
        node_config = with_protected_shards(config.node, config.protected)
        self.config = replace(config, node=node_config)
        self.node = Node(node_config)
        self.relay = relay_service_for(node_config, config.protected, config.faults)
        limits = config.rate_limits
        self.archive: Archive | None = None
        self.archiver: MessageArchiver | None = None
        self.archive_writer: ArchiveWriter | None = None
        self.store: StoreServer | None = None
        self.sync: SyncService | None = None
        self.filter: FilterServer | None = None
        self.lightpush: LightPushServer | None = None
        self.metrics: MetricsServer | None = None
        self.peer_exchange: PeerExchangeServer | None = None
        libp2p = self.node.host.libp2p
        if config.store is not None:
            self.archive = open_archive(config.store.archive_location, config.store.retention)
            self.archiver = MessageArchiver(self.archive)
            self.archive_writer = ArchiveWriter(
                self.archiver,
                queue=config.archive_queue,
                retention_interval=config.store.retention_interval,
            )
            self.store = StoreServer(self.archive, limiter=limiter_for("store", limits))
            self.relay.add_sink(self.archive_writer.offer)
            if config.sync is not None:
                self.sync = SyncService(
                    self.archive,
                    self.archiver,
                    [format_pubsub_topic(node_config.cluster_id, s) for s in node_config.shards],
                    config.sync,
                    limiter=limiter_for("sync", limits),
                    shard_key=self.relay.validator.protection_key,
                )
        if config.filter:
            self.filter = FilterServer(libp2p, rate_limiter=limiter_for("filter", limits))
            self.relay.add_sink(self._to_filter)
        if config.lightpush:
            self.lightpush = LightPushServer(
                libp2p,
                relay_publisher(self.relay),
                shard_for=autoshard_topic(config.node.cluster_id, config.node.shards),
                rate_limiter=limiter_for("lightpush", limits),
            )
        if config.peer_exchange:
            self.peer_exchange = PeerExchangeServer(
                capabilities_of(config),
                RelayShards(node_config.cluster_id, node_config.shards),
                rate_limiter=limiter_for("px", limits),
                announce=config.announce,
            )
        if config.metrics is not None:
            address, port = config.metrics
            self.metrics = MetricsServer(self.collect_metrics, address, port)

    def _to_filter(self, pubsub_topic: str, message: WakuMessage, data: bytes) -> None:
        assert self.filter is not None
        try:
            self.filter.on_message(pubsub_topic, message)
        except RuntimeError:  # a message in the instant the node starts or stops
            log.debug("filter server not running; a message was not pushed")

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ServiceNode]:
        """Start everything; stop everything (and close the archive) on exit.

        The metrics port is bound first, so a busy port raises MetricsBindError before the node
        starts. Services start in dependency order: consumers of relay messages before relay,
        relay before light push (which publishes through it).
        """
        try:
            if self.metrics is not None:
                await self.metrics.bind()
            for service in (self.archive_writer, self.filter, self.relay, self.store):
                if service is not None:
                    await self.node.mount(service)
            for late in (self.lightpush, self.peer_exchange, self.sync):
                if late is not None:
                    await self.node.mount(late)
            if self.metrics is not None:
                await self.node.mount(self.metrics)
            async with self.node.run():
                yield self
        finally:
            if self.metrics is not None:
                await self.metrics.close()  # bound but never served if the node failed to start
            if self.archive is not None:
                self.archive.close()

    async def collect_metrics(self) -> list[Metric]:
        """Every metric the node exports, named `chinwag_*` (docs/operator-guide.md)."""
        metrics = [
            Metric.single(
                "chinwag_connected_peers",
                "gauge",
                "Peers with an open connection.",
                len(self.node.host.connected_peers()),
            ),
            *relay_metrics(self.relay),
            *bandwidth_metrics(self.node.host.bandwidth.snapshot(trio.current_time())),
            *inbound_metrics(self.node.host.inbound),
            *request_gate_metrics(self._gates()),
        ]
        if self.store is not None:
            metrics.append(
                Metric.by_label(
                    "chinwag_store_requests_total",
                    "counter",
                    "Store queries answered, by status code.",
                    "status",
                    {str(k): v for k, v in self.store.status_counts.items()},
                )
            )
        if self.archive is not None and self.archive_writer is not None:
            metrics.extend(await archive_metrics(self.archive, self.archive_writer))
        if self.sync is not None:
            metrics.extend(sync_metrics(self.sync))
        if self.filter is not None:
            metrics.extend(filter_metrics(self.filter))
        if self.lightpush is not None:
            metrics.append(
                Metric(
                    "chinwag_lightpush_requests_total",
                    "counter",
                    "Light push requests answered, by protocol version and status code "
                    "(v2 reports 200 for success and 0 for failure).",
                    tuple(
                        _sample(v, version=version, status=str(status))
                        for (version, status), v in sorted(self.lightpush.responses.items())
                    ),
                )
            )
        if self.peer_exchange is not None:
            metrics.extend(peer_exchange_metrics(self.peer_exchange))
        return metrics

    def _gates(self) -> dict[str, ServerGate]:
        servers: dict[str, Any] = {
            "store": self.store,
            "filter": self.filter,
            "lightpush": self.lightpush,
            "px": self.peer_exchange,
        }
        return {name: server.gate for name, server in servers.items() if server is not None}


def inbound_metrics(gate: InboundGate) -> list[Metric]:
    admission = gate.admission
    return [
        Metric.by_label(
            "chinwag_inbound_connections_total",
            "counter",
            "Inbound connections by outcome: accepted, upgraded, handshake_failed, and the "
            "sheds (evicted_*, refused_*, *_timeout).",
            "outcome",
            gate.counts,
        ),
        Metric.by_label(
            "chinwag_inbound_connections",
            "gauge",
            "Inbound connections now, pending (in their handshake) or open.",
            "phase",
            {"pending": admission.pending, "open": admission.open},
        ),
    ]


def request_gate_metrics(gates: Mapping[str, ServerGate]) -> list[Metric]:
    shed = [
        _sample(count, protocol=protocol, reason=reason)
        for protocol, gate in sorted(gates.items())
        for reason, count in gate.shed.items()
    ]
    return [
        Metric(
            "chinwag_requests_shed_total",
            "counter",
            "Requests refused or dropped by a server's request gate, by protocol and reason "
            "(peer_busy, server_full, waited_too_long, never_sent).",
            tuple(shed),
        ),
        Metric.by_label(
            "chinwag_requests_in_progress",
            "gauge",
            "Requests a server holds now (read, waiting or running), by protocol.",
            "protocol",
            {protocol: gate.core.open for protocol, gate in gates.items()},
        ),
    ]


def _sample(value: float, **labels: str) -> Sample:
    return Sample(tuple(labels.items()), value)


def bandwidth_metrics(snapshot: Snapshot) -> list[Metric]:
    """The bandwidth meter's totals (chat/waku/bandwidth.py); rates are Prometheus's job."""

    def by_direction(lines: Sequence[Line], label: str) -> tuple[Sample, ...]:
        return tuple(
            _sample(value, **{label: line.name}, direction=direction)
            for line in lines
            for direction, value in (("in", line.bytes_in), ("out", line.bytes_out))
        )

    return [
        Metric(
            "chinwag_bandwidth_bytes_total",
            "counter",
            "Bytes read and written per protocol (by the libp2p protocol id of the stream; "
            "'transport' is the connections' Noise and muxer framing, so the protocols add "
            "up to every connection byte after the handshakes).",
            by_direction((*snapshot.protocols, snapshot.transport), "protocol"),
        ),
        Metric(
            "chinwag_bandwidth_relay_bytes_total",
            "counter",
            "Relay bytes by what they carry: gossip control, subscriptions, and published "
            "messages by kind ('message' for content topics this node does not classify).",
            by_direction(snapshot.kinds, "kind"),
        ),
        Metric(
            "chinwag_bandwidth_relay_messages_total",
            "counter",
            "Relay messages published or forwarded (control: RPCs with control parts), by kind.",
            tuple(
                _sample(value, kind=line.name, direction=direction)
                for line in snapshot.kinds
                for direction, value in (("in", line.messages_in), ("out", line.messages_out))
            ),
        ),
    ]


# RelayCounters field -> (metric, help) for the traffic counters, and drop reasons.
RELAY_TRAFFIC = {
    "rpcs_received": ("chinwag_relay_rpcs_received_total", "Relay RPCs received."),
    "messages_received": (
        "chinwag_relay_messages_received_total",
        "Relay messages received (before dedupe and validation).",
    ),
    "duplicates": ("chinwag_relay_duplicates_total", "Relay messages received again."),
    "delivered": (
        "chinwag_relay_messages_delivered_total",
        "New valid relay messages handed to the node.",
    ),
    "forwarded": (
        "chinwag_relay_messages_forwarded_total",
        "Copies of relay messages queued to peers (one per peer).",
    ),
    "published": ("chinwag_relay_messages_published_total", "Messages this node published."),
}
RELAY_DROPS = {
    "rpcs_malformed": "malformed_rpc",
    "rpcs_from_graylisted": "graylisted_peer",
    "unsubscribed_topic": "unsubscribed_topic",
    "signed_rejected": "signed_message",
    "oversized_rejected": "too_large",
    "send_queue_drops": "send_queue_full",
    "delivery_drops": "delivery_queue_full",
}
RELAY_GOSSIP = (
    "iwant_sent",
    "iwant_served",
    "received_after_iwant",
    "broken_promises",
    "grafts_sent",
    "prunes_sent",
    "disconnects_requested",
    "stream_errors",
)
# Validator verdicts come from the validator itself, with reasons (its counters() keys),
# so the router's reason-less totals of the same verdicts are not exported again.
VALIDATION_OUTCOMES = {"rejected": "reject", "ignored": "ignore"}
RELAY_FROM_VALIDATOR = ("validator_rejected", "validator_ignored", "validator_errors")


def relay_metrics(relay: RelayService) -> list[Metric]:
    counters: RelayCounters = relay.router.counters
    values = counters.as_dict()
    metrics = [
        Metric.single(name, "counter", help, values[field])
        for field, (name, help) in RELAY_TRAFFIC.items()
    ]
    metrics.append(
        Metric.by_label(
            "chinwag_relay_drops_total",
            "counter",
            "Relay messages or RPCs dropped, by reason.",
            "reason",
            {reason: values[field] for field, reason in RELAY_DROPS.items()},
        )
    )
    metrics.append(
        Metric.by_label(
            "chinwag_relay_gossip_events_total",
            "counter",
            "Gossipsub control and stream events, by kind.",
            "event",
            {field: values[field] for field in RELAY_GOSSIP},
        )
    )
    validation = [_sample(relay.validator.accepted, outcome="accept", reason="")]
    for key, value in sorted(relay.validator.counters().items()):
        kind, _, reason = key.partition(".")
        outcome = VALIDATION_OUTCOMES.get(kind)
        if outcome is not None:
            validation.append(_sample(value, outcome=outcome, reason=reason))
    validation.append(_sample(values["validator_errors"], outcome="error", reason=""))
    metrics.append(
        Metric(
            "chinwag_relay_validation_total",
            "counter",
            "Relay validator verdicts, by outcome (accept, reject, ignore, error) and reason.",
            tuple(validation),
        )
    )
    metrics.extend(protected_shard_metrics(relay.validator))
    try:
        relay_peers = len(relay.driver.relay_peers)
    except RuntimeError:  # relay is not running
        relay_peers = 0
    metrics.append(
        Metric.single(
            "chinwag_relay_peers", "gauge", "Connected peers that speak relay.", relay_peers
        )
    )
    mesh = relay.router.mesh
    metrics.append(
        Metric.by_label(
            "chinwag_relay_mesh_peers",
            "gauge",
            "Peers in this node's gossipsub mesh, by pubsub topic.",
            "topic",
            {topic: len(mesh.get(topic, ())) for topic in relay.topics},
        )
    )
    return metrics


def protected_shard_metrics(validator: RelayValidator) -> list[Metric]:
    """Which shards are protected by which key, key rotations, and who is attacked how."""
    protected = validator.protected_topics
    return [
        Metric(
            "chinwag_relay_protected_shard_key",
            "gauge",
            "1 for each protected shard (pubsub topic) with the public key it checks now.",
            tuple(
                _sample(1, topic=topic, key=protected[topic].to_hex())
                for topic in sorted(protected)
            ),
        ),
        Metric.by_label(
            "chinwag_relay_protected_key_rotations_total",
            "counter",
            "Times a protected shard's key was replaced by another at run time.",
            "topic",
            {topic: validator.key_changes[topic] for topic in protected},
        ),
        Metric(
            "chinwag_relay_protected_rejections_total",
            "counter",
            "Messages rejected on protected shards (never forwarded; the forwarder is "
            "penalised), by pubsub topic and reason.",
            tuple(
                _sample(count, topic=topic, reason=reason)
                for (topic, reason), count in sorted(validator.protected_rejected.items())
            ),
        ),
    ]


async def archive_metrics(archive: Archive, writer: ArchiveWriter) -> list[Metric]:
    # The archive's methods take a lock a writer thread may hold: never block the event loop.
    count = await trio.to_thread.run_sync(archive.message_count)
    size = await trio.to_thread.run_sync(archive.size_bytes)
    archiver = writer.archiver
    return [
        Metric.single("chinwag_archive_messages", "gauge", "Messages in the archive.", count),
        Metric.single(
            "chinwag_archive_size_bytes", "gauge", "Bytes the archive occupies on disk.", size
        ),
        Metric.by_label(
            "chinwag_archive_writes_total",
            "counter",
            "Relay messages offered to the archive, by outcome.",
            "outcome",
            {outcome.value: archiver.outcomes[outcome] for outcome in ArchiveOutcome},
        ),
        Metric.single(
            "chinwag_archive_disk_full",
            "gauge",
            "1 while the last archive write did not fit (disk or byte cap full), else 0.",
            int(archiver.disk_full),
        ),
        Metric.single(
            "chinwag_archive_queue_drops_total",
            "counter",
            "Relay messages dropped because the archive writer was behind.",
            writer.dropped,
        ),
        Metric.single(
            "chinwag_archive_retention_passes_total",
            "counter",
            "Retention passes run.",
            archiver.retention_passes,
        ),
    ]


def peer_exchange_metrics(server: PeerExchangeServer) -> list[Metric]:
    return [
        Metric.by_label(
            "chinwag_px_requests_total",
            "counter",
            "Peer exchange requests answered, by status code.",
            "status",
            {str(k): v for k, v in sorted(server.responses.items())},
        ),
        Metric.single(
            "chinwag_px_records_sent_total",
            "counter",
            "Node records handed out in peer exchange answers.",
            server.records_sent,
        ),
        Metric.single(
            "chinwag_px_known_records",
            "gauge",
            "Node records of other peers this node knows (it hands out the live ones).",
            len(server.book),
        ),
        Metric.by_label(
            "chinwag_px_records_dropped_total",
            "counter",
            "Records our peers sent us that failed the checks, by reason.",
            "reason",
            dict(sorted(server.learned_dropped.items())),
        ),
    ]


PUSH_DROP_REASONS = ("queue_full", "memory_full", "not_connected", "stream_failed")


def filter_metrics(server: FilterServer) -> list[Metric]:
    stats = server.stats
    return [
        Metric.by_label(
            "chinwag_filter_requests_total",
            "counter",
            "Filter subscribe requests answered, by status code.",
            "status",
            {str(k): v for k, v in stats.requests.items()},
        ),
        Metric.single(
            "chinwag_filter_pushes_total",
            "counter",
            "Messages pushed to subscribers.",
            stats.pushes_sent,
        ),
        Metric.by_label(
            "chinwag_filter_push_drops_total",
            "counter",
            "Pushes not delivered, by reason.",
            "reason",
            {r: stats.pushes_dropped[r] for r in PUSH_DROP_REASONS},
        ),
        Metric.single(
            "chinwag_filter_push_queue_bytes",
            "gauge",
            "Bytes of pushes held for subscribers, waiting or being written.",
            server.push_queues.total_bytes,
        ),
        Metric.single(
            "chinwag_filter_subscribers",
            "gauge",
            "Peers with a filter subscription.",
            server.subscriptions.peer_count,
        ),
    ]
