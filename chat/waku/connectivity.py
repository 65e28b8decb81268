"""Everything that keeps a node connected, mounted in one call: the peer manager, health,
mDNS LAN discovery and rendezvous (client, and optionally a rendezvous point).

    connectivity = Connectivity(node, ConnectivityOptions.from_network(settings, mdns=True))
    await connectivity.mount()            # before or after node.run()
    connectivity.health.set_catch_up(...)  # the messenger's store catch-up
    connectivity.health.on_reset(...)      # after sleep / network change
    connectivity.peers.store_peers()       # store nodes, best first

Peers named by the fleet file or `--peer` go to the peer manager (not `NodeConfig.static_peers`:
one component decides whom to dial). Service nodes named per role are marked with that
service so the peer manager keeps one of each connected even before identify says so.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from multiaddr import Multiaddr

from chat.waku.discovery.mdns.core import Discovered
from chat.waku.discovery.mdns.service import MdnsService
from chat.waku.discovery.mdns.wire import MDNS_PORT
from chat.waku.discovery.rendezvous import RendezvousPoint, ShardPeer, ShardRendezvous
from chat.waku.enr.waku_fields import Capability, WakuPeer
from chat.waku.health import HealthPolicy
from chat.waku.health_monitor import DEFAULT_POLICY, HealthService
from chat.waku.network import NetworkSettings
from chat.waku.node import Node
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import PeerPolicy, Service


@dataclass(frozen=True)
class ConnectivityOptions:
    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    filter_peers: tuple[str, ...] = ()
    lightpush_peers: tuple[str, ...] = ()
    required_services: tuple[Service, ...] = ()
    """Services health needs for ONLINE (a chat client: store)."""
    mdns: bool = False
    mdns_interfaces: tuple[str, ...] | None = None
    """IPv4 addresses to multicast on; None: loopback and the default route's address."""
    mdns_port: int = MDNS_PORT
    rendezvous: bool = True
    """Use connected rendezvous points to find peers of our shards."""
    rendezvous_point: bool = False
    """Also serve rendezvous for others (service nodes)."""
    peer_policy: PeerPolicy | None = None
    health_policy: HealthPolicy = DEFAULT_POLICY

    @classmethod
    def from_network(
        cls,
        settings: NetworkSettings,
        *,
        mdns: bool | None = None,
        required_services: Sequence[Service] = (),
        rendezvous_point: bool = False,
    ) -> ConnectivityOptions:
        """From merged fleet/flag/config settings; mDNS defaults to on when no peer is known."""
        return cls(
            peers=settings.peers,
            store_peers=settings.store_peers,
            filter_peers=settings.filter_peers,
            lightpush_peers=settings.lightpush_peers,
            required_services=tuple(required_services),
            mdns=settings.lan_only if mdns is None else mdns,
            rendezvous_point=rendezvous_point,
        )


class Connectivity:
    def __init__(
        self, node: Node, options: ConnectivityOptions, rng: random.Random | None = None
    ) -> None:
        self.node = node
        self.options = options
        shards = node.config.shards
        self.peers = PeerManagerService(
            shards, metadata=node.metadata, policy=options.peer_policy, rng=rng
        )
        self.peers.add_addresses(options.peers)
        for role, addrs in (
            (Service.STORE, options.store_peers),
            (Service.FILTER, options.filter_peers),
            (Service.LIGHTPUSH, options.lightpush_peers),
        ):
            self.peers.add_addresses(addrs, services=(Service.RELAY, role))
        self.health = HealthService(
            self.peers,
            shards,
            required_services=options.required_services,
            policy=options.health_policy,
        )
        self.mdns: MdnsService | None = None
        if options.mdns:
            self.mdns = MdnsService(
                node.config.cluster_id,
                self._found_on_lan,
                interfaces=options.mdns_interfaces,
                port=options.mdns_port,
            )
        self.rendezvous: ShardRendezvous | None = None
        if options.rendezvous:
            self.rendezvous = ShardRendezvous(
                node.config.cluster_id, shards, self._found_at_rendezvous
            )
        self.rendezvous_point = RendezvousPoint() if options.rendezvous_point else None

    async def mount(self) -> None:
        for service in (
            self.peers,
            self.health,
            self.mdns,
            self.rendezvous_point,
            self.rendezvous,
        ):
            if service is not None:
                await self.node.mount(service)

    def follow_shards(self, shards: Sequence[int]) -> None:
        """The shards we relay changed (a community's joined or left): the peer manager
        looks for peers there and rendezvous registers and discovers under them."""
        self.peers.core.set_shards(shards)
        self.peers.poke()
        if self.rendezvous is not None:
            self.rendezvous.set_shards(shards)

    def _found_on_lan(self, peer: Discovered) -> None:
        self.peers.add_discovered(peer.peer_id, [Multiaddr(a) for a in peer.addrs])

    def _found_at_rendezvous(self, peer: ShardPeer) -> None:
        self.peers.add_discovered(peer.peer_id, list(peer.addrs), shards=[peer.shard])

    def found_by_peer_exchange(self, peer: WakuPeer) -> None:
        """A peer whose record came through peer exchange: a candidate like any found one."""
        suffix = Multiaddr(f"/p2p/{peer.peer_id.to_base58()}")
        services = [s for capability, s in ENR_SERVICES if peer.serves(capability)]
        shards = peer.shards.shards if peer.shards is not None else None
        addrs = [a.decapsulate(suffix) for a in peer.dial_addrs]
        self.peers.add_discovered(peer.peer_id, addrs, services=services, shards=shards)


ENR_SERVICES = (
    (Capability.RELAY, Service.RELAY),
    (Capability.STORE, Service.STORE),
    (Capability.FILTER, Service.FILTER),
    (Capability.LIGHTPUSH, Service.LIGHTPUSH),
)
"""The `waku2` bits of a record, as the peer manager's services."""
