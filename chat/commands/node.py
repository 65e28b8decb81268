"""`chinwag node`: a headless Waku service node: relay on its shards, plus metadata,
identify, ping and peer exchange (unless `--no-peer-exchange`); store (`--store`), filter
(`--filter`), light push (`--lightpush`) and a Prometheus endpoint (`--metrics`) on request.
The composition is chat.waku.service_node.

It prints its full multiaddrs (with /p2p/) on start, one per line after a header line, then
the metrics URL if any, then its node record (`enr enr:-...`, when it serves peer exchange:
what an operator hands to light clients), and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from chat.config import Config
from chat.errors import UserError
from chat.fleet import add_fleet_argument, load_fleet, resolve_network
from chat.waku.inbound_limits import DEFAULT_LIMITS, MAX_CONNECTIONS, InboundLimits

# The node stack (libp2p, trio) is imported where it is used, so `chinwag --help` and the
# other commands do not pay for it.
if TYPE_CHECKING:
    from collections.abc import Sequence

    from libp2p.crypto.keys import KeyPair
    from multiaddr import Multiaddr

    from chat.communities.follower import CommunityFollower
    from chat.waku.connectivity import ConnectivityOptions
    from chat.waku.health import HealthSummary
    from chat.waku.health_monitor import HealthService
    from chat.waku.message import WakuMessage
    from chat.waku.node import NodeConfig
    from chat.waku.protected import ShardPublicKey
    from chat.waku.relay.service import RelayService
    from chat.waku.service_node import ServiceNodeConfig, StoreOptions
    from chat.waku.sync.service import SyncOptions

NAME = "node"
HELP = "run a headless Waku service node"
USES_PROFILE = False

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/60000"
NODE_DIR = "node"
NODE_KEY_FILE = "nodekey"
ARCHIVE_FILE = "archive.sqlite"
KEPT_DIR = "communities"
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
# The same as chat.waku.service_node.DEFAULT_RETENTION (which imports the node stack).
DEFAULT_RETENTION_AGE = "7d"
DEFAULT_RETENTION_BYTES = "1GB"
NONE = "none"

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_SIZE = re.compile(r"^(\d+)\s*([kmgt]i?b|b)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip

log = logging.getLogger(__name__)


def default_node_key(config: Config) -> Path:
    """Node identity lives in the data dir, apart from chat profiles: one per machine/data dir."""
    return config.data_dir / NODE_DIR / NODE_KEY_FILE


def kept_dir_of(config: Config) -> Path:
    """Where `--community` keeps the newest description it saw of each community."""
    return config.data_dir / NODE_DIR / KEPT_DIR


def default_archive(config: Config) -> Path:
    return config.data_dir / NODE_DIR / ARCHIVE_FILE


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number")
    return value


def _shard(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 1023:
        raise argparse.ArgumentTypeError(f"shard {value} is not in 0-1023")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _cluster(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"cluster {value} is not in 0-65535")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        action="append",
        metavar="MULTIADDR",
        help=f"TCP address to listen on, repeatable (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--ws-port", type=_port, metavar="P", help="also accept WebSocket (/ws) on this port"
    )
    parser.add_argument(
        "--cluster", type=_cluster, metavar="C", help="cluster id (default: config, else 42)"
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        action="append",
        metavar="S",
        help="shard to serve, repeatable (default: config, else 0 and 1)",
    )
    parser.add_argument(
        "--peer",
        action="append",
        metavar="MULTIADDR",
        help="peer to keep connected (full multiaddr with /p2p/), repeatable",
    )
    add_fleet_argument(parser)
    parser.add_argument(
        "--protected-shard",
        action="append",
        metavar="SHARD:PUBKEY",
        help="serve SHARD and relay only messages signed by this secp256k1 public key (hex, "
        "compressed or not), as nwaku does; repeatable (default: config network.protected_shards)",
    )
    parser.add_argument(
        "--community",
        action="append",
        metavar="LINK",
        help="serve and protect a community's shard, following its signed description: a ban "
        "that rotates the shard key takes effect without a restart; repeatable",
    )
    parser.add_argument(
        "--node-key",
        type=Path,
        metavar="FILE",
        help="node identity key file, created if missing (default: DATA_DIR/node/nodekey)",
    )
    store = parser.add_argument_group("store (history for clients that were offline)")
    store.add_argument(
        "--store", action="store_true", help="archive relay messages and serve store v3"
    )
    store.add_argument(
        "--archive", metavar="PATH|URL",
        help="SQLite archive file (default: DATA_DIR/node/archive.sqlite), or a PostgreSQL "
        "database: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (several store nodes may "
        "share one)",
    )  # fmt: skip
    store.add_argument(
        "--retention-age", metavar="AGE",
        help="drop messages older than AGE: a number with s, m, h, d or w (e.g. 7d, 12h), "
        "or none (default 7d)",
    )  # fmt: skip
    store.add_argument(
        "--retention-messages", metavar="N", help="keep only the newest N messages (default: none)"
    )
    store.add_argument(
        "--retention-bytes", metavar="SIZE",
        help="hard cap on the archive (the file, or PostgreSQL's partitions): bytes, or with "
        "a unit (500MB, 2GiB), or none "
        "(default 1GB)",
    )  # fmt: skip
    store.add_argument(
        "--sync", action=argparse.BooleanOptionalAction, default=None,
        help="Waku Sync with the store nodes this node is connected to: each side sends the "
        "other what its archive lacks (default: on with --store)",
    )  # fmt: skip
    store.add_argument(
        "--sync-interval", metavar="DURATION",
        help="time between sync sessions with each peer, e.g. 5m or 30s (default 5m)",
    )  # fmt: skip
    store.add_argument(
        "--sync-window", metavar="DURATION",
        help="how far back sync compares archives, e.g. 1h (default 1h)",
    )  # fmt: skip
    services = parser.add_argument_group("light client services")
    services.add_argument("--filter", action="store_true", help="serve filter v2 subscriptions")
    services.add_argument(
        "--lightpush", action="store_true", help="serve light push v3 (and legacy v2)"
    )
    services.add_argument(
        "--no-peer-exchange", action="store_true",
        help="do not serve peer exchange (on by default: light clients find further service "
        "nodes through it; the node's record, printed at start, is what to hand out)",
    )  # fmt: skip
    services.add_argument(
        "--ext-multiaddr", action="append", metavar="MULTIADDR",
        help="an address clients reach the node on, put in its record (ENR) instead of the "
        "listen addresses: a public IP behind NAT, a DNS name, a wss proxy "
        "(e.g. /dns4/node.example.org/tcp/443/wss); no /p2p; repeatable",
    )  # fmt: skip
    services.add_argument(
        "--rate-limit", action="append", metavar="[PROTO:]N/PERIOD",
        help="nwaku-style rate limit, e.g. store:20/1s or lightpush:10/1m, or PROTO:off; "
        "repeatable (default store:50/1s, lightpush:30/1s, filter:30/1m per peer, px:10/1s)",
    )  # fmt: skip
    limits = parser.add_argument_group("connection limits")
    limits.add_argument(
        "--max-connections", type=_positive, metavar="N",
        help=f"open connections in total, both directions (default {MAX_CONNECTIONS})",
    )  # fmt: skip
    limits.add_argument(
        "--max-connections-per-ip", type=_positive, metavar="N",
        help="open inbound connections from one IP address "
        f"(default {DEFAULT_LIMITS.max_open_per_source})",
    )  # fmt: skip
    limits.add_argument(
        "--max-pending-connections", type=_positive, metavar="N",
        help="inbound connections still in their handshake, in total "
        f"(default {DEFAULT_LIMITS.max_pending})",
    )  # fmt: skip
    limits.add_argument(
        "--max-pending-per-ip", type=_positive, metavar="N",
        help="inbound connections still in their handshake from one IP address "
        f"(default {DEFAULT_LIMITS.max_pending_per_source})",
    )  # fmt: skip
    limits.add_argument(
        "--trusted-proxy", action="append", metavar="ADDRESS",
        help="a proxy in front of the node (the TLS proxy for WebSocket): an IP address or "
        "network; each connection through it counts as its own address for the per-IP "
        "limits; repeatable",
    )  # fmt: skip
    discovery = parser.add_argument_group("discovery")
    discovery.add_argument(
        "--mdns", action="store_true", help="announce and find nodes of our cluster on the LAN"
    )
    discovery.add_argument(
        "--rendezvous", action="store_true",
        help="serve rendezvous (clients find peers of a shard through this node)",
    )  # fmt: skip
    parser.add_argument(
        "--metrics", metavar="[HOST:]PORT",
        help=f"serve Prometheus metrics at http://HOST:PORT/metrics (host default "
        f"{DEFAULT_METRICS_ADDRESS}; port 0 picks a free one)",
    )  # fmt: skip


def node_config_from(args: argparse.Namespace, config: Config) -> NodeConfig:
    from multiaddr import Multiaddr

    from chat.waku.host import HostError, listen_addrs_for, load_or_create_node_key
    from chat.waku.node import NodeConfig

    try:
        tcp = [Multiaddr(a) for a in (args.listen or [DEFAULT_LISTEN])]
        listen = listen_addrs_for(tcp, args.ws_port)
    except (HostError, ValueError) as exc:
        raise UserError(f"bad --listen address: {exc}") from None
    key_pair = load_or_create_node_key(args.node_key or default_node_key(config))
    fleet = load_fleet(args.fleet) if getattr(args, "fleet", None) else None
    for peer in args.peer or ():
        try:
            Multiaddr(peer).value_for_protocol("p2p")
        except Exception:
            raise UserError(f"--peer {peer} must be a multiaddr ending in /p2p/<peer id>") from None
    network = resolve_network(
        config.network,
        fleet,
        cluster_id=args.cluster,
        shards=args.shard,
        peers=args.peer or (),
        exclude_peer=_peer_id_text(key_pair),
    )
    return NodeConfig(
        listen_addrs=listen,
        cluster_id=network.cluster_id,
        shards=network.shards,
        static_peers=network.peers,
        key_pair=key_pair,
        inbound_limits=inbound_limits_from(args),
        max_connections=args.max_connections or MAX_CONNECTIONS,
    )


def inbound_limits_from(args: argparse.Namespace) -> InboundLimits:
    """The connection-limit flags over the defaults (chat.waku.inbound_limits)."""
    from chat.waku.host import DEFAULT_INBOUND_LIMITS

    chosen = {
        "max_open_per_source": args.max_connections_per_ip,
        "max_pending": args.max_pending_connections,
        "max_pending_per_source": args.max_pending_per_ip,
        "trusted_proxies": tuple(args.trusted_proxy) if args.trusted_proxy else None,
    }
    try:
        return replace(DEFAULT_INBOUND_LIMITS, **{k: v for k, v in chosen.items() if v is not None})
    except ValueError as exc:
        raise UserError(f"bad --trusted-proxy: {exc}") from None


def _peer_id_text(key_pair: KeyPair) -> str:
    from libp2p.peer.id import ID

    return ID.from_pubkey(key_pair.public_key).to_base58()


def protected_shards_from(
    args: argparse.Namespace, config: Config, cluster_id: int
) -> dict[str, ShardPublicKey]:
    """--protected-shard values (or, without any, the config file's network.protected_shards)
    as pubsub topic -> public key."""
    if args.protected_shard:
        entries, option = list(args.protected_shard), "--protected-shard"
    else:
        entries = list(config.network.protected_shards)
        option = f"network.protected_shards in {config.config_file}:"
    protected: dict[str, ShardPublicKey] = {}
    for entry in entries:
        topic, key = parse_protected_shard(entry, cluster_id, option)
        if protected.get(topic, key) != key:
            raise UserError(
                f"{option} names shard {topic} twice with different keys; a shard has one key"
            )
        protected[topic] = key
    return protected


def parse_protected_shard(text: str, cluster_id: int, option: str) -> tuple[str, ShardPublicKey]:
    """`SHARD:PUBKEY` (nwaku's form; SHARD may also be a /waku/2/rs/C/S pubsub topic of our
    cluster), the key compressed or uncompressed hex, as (pubsub topic, key)."""
    from chat.waku.protected import ProtectedShardError, ShardPublicKey
    from chat.waku.topics import RelayShard, TopicError

    shard_text, sep, key_text = text.strip().rpartition(":")
    problem = ""
    topic = ""
    if not sep or not shard_text or not key_text:
        problem = "it needs a shard and a key separated by a colon"
    elif shard_text.startswith("/"):
        try:
            shard = RelayShard.parse(shard_text)
        except TopicError:
            problem = f"{shard_text[:64]} is not a /waku/2/rs/<cluster>/<shard> topic"
        else:
            if shard.cluster_id != cluster_id:
                problem = f"{shard_text} is not in this node's cluster {cluster_id}"
            topic = shard.pubsub_topic
    elif not shard_text.isdigit() or int(shard_text) > 1023:
        problem = f"the shard {shard_text[:16]!r} is not a number 0-1023"
    else:
        topic = RelayShard(cluster_id, int(shard_text)).pubsub_topic
    if not problem:
        try:
            return topic, ShardPublicKey.from_hex(key_text)
        except ProtectedShardError as exc:
            problem = f"the key is not a secp256k1 public key ({exc})"
    raise UserError(
        f"{option} {text[:200]} must be SHARD:PUBKEY (a shard number and the shard's "
        f"secp256k1 public key in hex, 33 or 65 bytes), but {problem}"
    )


def parse_duration(text: str, option: str) -> int:
    """Seconds in `7d`, `12h`, `30m`, `90s` or `2w`."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match[1]) == 0:
        raise UserError(
            f"{option} {text} must be a positive number with a unit, s, m, h, d or w "
            "(for example 7d or 12h)"
        )
    return int(match[1]) * _DURATION_UNITS[match[2]]


def parse_size(text: str, option: str) -> int:
    """Bytes in `1000000`, `500MB`, `2GiB` (decimal KB/MB/GB/TB, binary KiB/MiB/GiB/TiB)."""
    match = _SIZE.match(text.strip())
    if not match or int(match[1]) == 0:
        raise UserError(
            f"{option} {text} must be a positive size in bytes, optionally with a unit "
            "(KB, MB, GB, TB, KiB, MiB, GiB, TiB; for example 500MB)"
        )
    return int(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()]


def _is_none(text: str) -> bool:
    return text.strip().lower() == NONE


def parse_count(text: str, option: str) -> int:
    if not text.strip().isdigit() or int(text) == 0:
        raise UserError(f"{option} {text} must be a positive whole number")
    return int(text)


def parse_metrics_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT` or just `PORT` (on 127.0.0.1)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = DEFAULT_METRICS_ADDRESS
    host = host.removeprefix("[").removesuffix("]") or DEFAULT_METRICS_ADDRESS
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UserError(
            f"--metrics {text} must be HOST:PORT or PORT, with a port number 0-65535 "
            "(for example 127.0.0.1:8008)"
        )
    return host, int(port_text)


def store_options_from(args: argparse.Namespace, config: Config) -> StoreOptions | None:
    from chat.waku.service_node import StoreOptions
    from storage.archive import RetentionPolicy

    retention_flags = {
        "--archive": args.archive,
        "--retention-age": args.retention_age,
        "--retention-messages": args.retention_messages,
        "--retention-bytes": args.retention_bytes,
    }
    if not args.store:
        given = [flag for flag, value in retention_flags.items() if value is not None]
        if given:
            raise UserError(f"{given[0]} only makes sense with --store")
        return None
    age = args.retention_age or DEFAULT_RETENTION_AGE
    size = args.retention_bytes or DEFAULT_RETENTION_BYTES
    count = args.retention_messages or NONE
    retention = RetentionPolicy(
        max_age_ns=(None if _is_none(age) else parse_duration(age, "--retention-age") * 10**9),
        max_messages=None if _is_none(count) else parse_count(count, "--retention-messages"),
        max_bytes=None if _is_none(size) else parse_size(size, "--retention-bytes"),
    )
    from storage.archive.factory import is_postgres_url

    if args.archive is not None and is_postgres_url(args.archive):
        return StoreOptions(
            archive_path=default_archive(config), retention=retention, archive_url=args.archive
        )
    archive = Path(args.archive) if args.archive is not None else default_archive(config)
    return StoreOptions(archive_path=archive, retention=retention)


def sync_options_from(args: argparse.Namespace, store: StoreOptions | None) -> SyncOptions | None:
    from chat.waku.sync.service import SyncOptions

    flags = {"--sync-interval": args.sync_interval, "--sync-window": args.sync_window}
    given = [flag for flag, value in flags.items() if value is not None]
    if args.sync and store is None:
        raise UserError("--sync needs --store (it synchronises archives)")
    if store is None or args.sync is False:
        if given:
            raise UserError(f"{given[0]} only makes sense with --store and sync on")
        return None
    options = SyncOptions()
    if args.sync_interval is not None:
        options = replace(options, interval=parse_duration(args.sync_interval, "--sync-interval"))
    if args.sync_window is not None:
        options = replace(options, window=parse_duration(args.sync_window, "--sync-window"))
    return options


def ext_multiaddrs_from(args: argparse.Namespace) -> tuple[Multiaddr, ...]:
    from multiaddr import Multiaddr

    addrs: list[Multiaddr] = []
    for text in args.ext_multiaddr or ():
        try:
            addr = Multiaddr(text)
            names = [p.name for p in addr.protocols()]
        except Exception:
            raise UserError(f"--ext-multiaddr {text} is not a multiaddr") from None
        if "p2p" in names:
            raise UserError(f"--ext-multiaddr {text} must not end in /p2p/<peer id>")
        if "tcp" not in names:
            raise UserError(f"--ext-multiaddr {text} must be a TCP address (plain, ws or wss)")
        addrs.append(addr)
    if addrs and args.no_peer_exchange:
        raise UserError("--ext-multiaddr goes into the node's record: drop --no-peer-exchange")
    return tuple(addrs)


def service_config_from(args: argparse.Namespace, config: Config) -> ServiceNodeConfig:
    """Everything `chinwag node` runs, from its options; bad options are UserErrors."""
    from chat.waku.ratelimit import RateLimitError, rate_limits_from_flags
    from chat.waku.service_node import ServiceNodeConfig, with_protected_shards

    store = store_options_from(args, config)
    try:
        limits = rate_limits_from_flags(args.rate_limit or [])
    except RateLimitError as exc:
        raise UserError(f"a --rate-limit value is not valid: {exc}") from None
    metrics = parse_metrics_address(args.metrics) if args.metrics is not None else None
    node_config = node_config_from(args, config)
    protected = protected_shards_from(args, config, node_config.cluster_id)
    followers = followers_from(args, node_config.cluster_id, kept_dir=kept_dir_of(config))
    for follower in followers:
        if follower.key is not None:
            protected.setdefault(follower.pubsub_topic, follower.key)
        elif follower.link.shard not in node_config.shards:
            # A community on the shared, unprotected shard: served like any shard (relay,
            # store), nothing to validate; its descriptions are still followed.
            shards = (*node_config.shards, follower.link.shard)
            node_config = replace(node_config, shards=shards)
    return ServiceNodeConfig(
        node=with_protected_shards(node_config, protected),
        protected=protected,
        store=store,
        sync=sync_options_from(args, store),
        filter=args.filter,
        lightpush=args.lightpush,
        peer_exchange=not args.no_peer_exchange,
        announce=ext_multiaddrs_from(args),
        rate_limits=limits,
        metrics=metrics,
    )


def followers_from(
    args: argparse.Namespace, cluster_id: int, *, kept_dir: Path | None = None
) -> list[CommunityFollower]:
    """--community values: one follower each (UserError for a bad link or another cluster).
    `kept_dir`: where each keeps the newest description it saw (DATA_DIR/node/communities)."""
    from chat.communities.follower import CommunityFollower, FollowError, parse_community_link
    from chat.communities.kept import KeptDescriptions
    from chat.messenger.config import CONTACT_SHARD
    from chat.waku.topics import format_pubsub_topic

    followers = []
    for text in getattr(args, "community", None) or []:
        try:
            link = parse_community_link(text)
            if link.cluster_id != cluster_id:
                raise FollowError(
                    f"--community names a community of cluster {link.cluster_id}; this node "
                    f"serves cluster {cluster_id}"
                )
            kept = KeptDescriptions(kept_dir) if kept_dir is not None else None
            followers.append(
                CommunityFollower(link, format_pubsub_topic(cluster_id, CONTACT_SHARD), kept)
            )
        except FollowError as exc:
            raise UserError(str(exc)) from None
    return followers


def follow(relay: RelayService, followers: Sequence[CommunityFollower]) -> None:
    """Each community's descriptions, as the relay delivers them, move its shard's key."""
    for follower in followers:
        relay.subscribe(follower.default_pubsub_topic)

    def sink(pubsub_topic: str, message: WakuMessage, data: bytes) -> None:
        for follower in followers:
            if follower.watches(pubsub_topic, message.content_topic):
                key = follower.offer(pubsub_topic, message.content_topic, message.payload)
                if key is not None:
                    relay.protect(follower.pubsub_topic, key)

    if followers:
        relay.add_sink(sink)


def _services_line(config: ServiceNodeConfig) -> str:
    names = ["relay"]
    if config.store is not None:
        names.append("store")
    if config.sync is not None:
        names.append("sync")
    if config.filter:
        names.append("filter")
    if config.lightpush:
        names.append("lightpush")
    if config.peer_exchange:
        names.append("px")
    return ",".join(names)


def health_line(summary: HealthSummary) -> str:
    """`health online shards 0:3,1:2`: what `chinwag node` prints whenever health changes."""
    shards = ",".join(f"{shard}:{count}" for shard, count in summary.peers_per_shard)
    return f"health {summary.state.value} shards {shards}"


async def _print_health(health: HealthService) -> None:
    last = health_line(health.summary())  # the start (offline, no peers) goes without saying
    async for summary in health.subscribe():
        line = health_line(summary)
        if line != last:
            print(line, flush=True)
            last = line


async def serve(
    service_config: ServiceNodeConfig,
    options: ConnectivityOptions | None = None,
    followers: Sequence[CommunityFollower] = (),
) -> None:
    """Run the node until SIGINT/SIGTERM. With `options`, the peer manager (not the node's
    static-peer loop) keeps the configured peers connected, and health lines are printed."""
    import trio

    from chat.waku.connectivity import Connectivity
    from chat.waku.host import HostError
    from chat.waku.metrics import MetricsBindError
    from chat.waku.service_node import ServiceNode
    from storage.archive import ArchiveError

    node_config = service_config.node
    if options is not None:
        options = replace(options, peers=(*node_config.static_peers, *options.peers))
        service_config = replace(service_config, node=replace(node_config, static_peers=()))
    try:
        service_node = ServiceNode(service_config)
    except ArchiveError as exc:
        raise UserError(f"the archive cannot be opened: {exc}") from None
    follow(service_node.relay, followers)
    connectivity = None
    if options is not None:
        connectivity = Connectivity(service_node.node, options)
        if service_node.peer_exchange is not None:
            # Records our peers hand us are candidates for the peer manager to dial.
            service_node.peer_exchange.on_learned = connectivity.found_by_peer_exchange
        await connectivity.mount()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with service_node.run():
                shards = ",".join(str(s) for s in node_config.shards)
                print(
                    f"chinwag node {service_node.node.host.peer_id} "
                    f"cluster {node_config.cluster_id} shards {shards} "
                    f"services {_services_line(service_config)}",
                    flush=True,
                )
                for addr in service_node.node.full_multiaddrs():
                    print(addr, flush=True)
                if service_node.metrics is not None:
                    print(f"metrics {service_node.metrics.url}", flush=True)
                px = service_node.peer_exchange
                if px is not None and px.own is not None:
                    print(f"enr {px.own.enr.text}", flush=True)
                async with trio.open_nursery() as nursery:
                    if connectivity is not None:
                        nursery.start_soon(_print_health, connectivity.health)
                    async for signum in signals:
                        log.info("stopping on %s", signal.Signals(signum).name)
                        break
                    nursery.cancel_scope.cancel()
        except HostError as exc:
            raise UserError(f"the node cannot start: {exc}. Is the port already in use?") from None
        except MetricsBindError as exc:
            raise UserError(f"{exc}. Is the port already in use?") from None
    print("chinwag node stopped", flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    import trio

    from chat.waku.connectivity import ConnectivityOptions

    if config.log_level != "DEBUG":
        # py-libp2p warns about every refused protocol and peer churn; that is normal here.
        logging.getLogger("libp2p").setLevel(logging.ERROR)
    options = ConnectivityOptions(mdns=args.mdns, rendezvous_point=args.rendezvous)
    service_config = service_config_from(args, config)
    followers = followers_from(args, service_config.node.cluster_id, kept_dir=kept_dir_of(config))
    trio.run(serve, service_config, options, followers)
    sys.stdout.flush()
    return 0
