"""`chinwag node`: a headless Waku service node: relay on its shards, plus metadata,
identify and ping.

It prints its full multiaddrs (with /p2p/) on start, one per line after a header line, and
stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import trio
from multiaddr import Multiaddr

from chat.config import Config
from chat.errors import UserError
from chat.waku.host import HostError, listen_addrs_for, load_or_create_node_key
from chat.waku.message import now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ProtectedShardError, ShardPublicKey
from chat.waku.relay.service import RelayService
from chat.waku.topics import RelayShard
from chat.waku.validation import RelayValidator

NAME = "node"
HELP = "run a headless Waku service node"
USES_PROFILE = False

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/60000"
NODE_DIR = "node"
NODE_KEY_FILE = "nodekey"

log = logging.getLogger(__name__)


def default_node_key(config: Config) -> Path:
    """Node identity lives in the data dir, apart from chat profiles: one per machine/data dir."""
    return config.data_dir / NODE_DIR / NODE_KEY_FILE


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
    parser.add_argument(
        "--protected-shard",
        action="append",
        metavar="SHARD:PUBKEY",
        help="only relay messages on SHARD signed by this secp256k1 key (hex), repeatable",
    )
    parser.add_argument(
        "--node-key",
        type=Path,
        metavar="FILE",
        help="node identity key file, created if missing (default: DATA_DIR/node/nodekey)",
    )


def node_config_from(args: argparse.Namespace, config: Config) -> NodeConfig:
    try:
        tcp = [Multiaddr(a) for a in (args.listen or [DEFAULT_LISTEN])]
        listen = listen_addrs_for(tcp, args.ws_port)
    except (HostError, ValueError) as exc:
        raise UserError(f"bad --listen address: {exc}") from None
    peers = tuple(args.peer) if args.peer else config.network.peers
    for peer in peers:
        try:
            Multiaddr(peer).value_for_protocol("p2p")
        except Exception:
            raise UserError(f"--peer {peer} must be a multiaddr ending in /p2p/<peer id>") from None
    return NodeConfig(
        listen_addrs=listen,
        cluster_id=args.cluster if args.cluster is not None else config.network.cluster_id,
        shards=tuple(args.shard) if args.shard else config.network.shards,
        static_peers=peers,
        key_pair=load_or_create_node_key(args.node_key or default_node_key(config)),
    )


def protected_shards_from(args: argparse.Namespace, cluster_id: int) -> dict[str, ShardPublicKey]:
    protected: dict[str, ShardPublicKey] = {}
    for item in args.protected_shard or []:
        shard_text, sep, key_text = item.partition(":")
        try:
            if not sep:
                raise ValueError
            shard = _shard(shard_text)
            key = ShardPublicKey.from_hex(key_text)
        except (ValueError, argparse.ArgumentTypeError, ProtectedShardError):
            raise UserError(
                f"--protected-shard {item} must be SHARD:PUBKEY, a shard number and a hex "
                "secp256k1 public key"
            ) from None
        protected[RelayShard(cluster_id, shard).pubsub_topic] = key
    return protected


def relay_service_for(
    node_config: NodeConfig, protected: dict[str, ShardPublicKey] | None = None
) -> RelayService:
    topics = [RelayShard(node_config.cluster_id, s).pubsub_topic for s in node_config.shards]
    validator = RelayValidator(clock=now_ns, protected=protected or {})
    return RelayService(topics, validator=validator)


async def serve(
    node_config: NodeConfig, protected: dict[str, ShardPublicKey] | None = None
) -> None:
    node = Node(node_config)
    await node.mount(relay_service_for(node_config, protected))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with node.run():
                shards = ",".join(str(s) for s in node_config.shards)
                print(
                    f"chinwag node {node.host.peer_id} "
                    f"cluster {node_config.cluster_id} shards {shards}",
                    flush=True,
                )
                for addr in node.full_multiaddrs():
                    print(addr, flush=True)
                async for signum in signals:
                    log.info("stopping on %s", signal.Signals(signum).name)
                    break
        except HostError as exc:
            raise UserError(f"the node cannot start: {exc}. Is the port already in use?") from None
    print("chinwag node stopped", flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    if config.log_level != "DEBUG":
        # py-libp2p warns about every refused protocol and peer churn; that is normal here.
        logging.getLogger("libp2p").setLevel(logging.ERROR)
    node_config = node_config_from(args, config)
    protected = protected_shards_from(args, node_config.cluster_id)
    trio.run(serve, node_config, protected)
    sys.stdout.flush()
    return 0
