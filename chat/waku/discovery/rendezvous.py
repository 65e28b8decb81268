"""Finding peers of a shard through rendezvous points (libp2p `/rendezvous/1.0.0`).

Communities will live on shards of their own; a client joining one needs relay peers on that
shard, and a fleet file cannot list them all. A rendezvous point (any service node run with
it) keeps registrations per namespace; chinwag uses one namespace per shard, the shard's
pubsub topic (`/waku/2/rs/<cluster>/<shard>`).

`RendezvousPoint` serves the protocol (py-libp2p 0.8.1's `RendezvousService`, which bounds
message sizes and registrations per namespace). `ShardRendezvous` is the client side: every
connected peer that identify says speaks rendezvous is used as a point; we register under each
of our shards' namespaces and discover the others registered there, handing them to
`on_discovered` (the peer manager's `add_discovered`, with the shard known).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio
from libp2p.discovery.rendezvous import RendezvousClient, RendezvousError, RendezvousService
from libp2p.discovery.rendezvous.config import DEFAULT_TTL, RENDEZVOUS_PROTOCOL
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.host import TaskStatusLike, WakuHost
from chat.waku.topics import RelayShard

log = logging.getLogger(__name__)

DISCOVER_INTERVAL = 60.0
POINT_CHECK_INTERVAL = 2.0
"""How often we look for a newly connected rendezvous point (a local check, no traffic): a
client that just started registers within seconds, not at the next minute's round."""
REGISTRATION_TTL = DEFAULT_TTL
"""Two hours, the protocol's default; we re-register at half of it."""
REQUEST_TIMEOUT = 10.0
DISCOVER_LIMIT = 100


def shard_namespace(cluster_id: int, shard: int) -> str:
    return RelayShard(cluster_id, shard).pubsub_topic


@dataclass(frozen=True)
class ShardPeer:
    peer_id: ID
    addrs: tuple[Multiaddr, ...]
    shard: int


class RendezvousPoint:
    """Serves rendezvous on a node: registrations and discovery for any namespace."""

    name = "rendezvous-point"

    def __init__(self) -> None:
        self.service: RendezvousService | None = None

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.service = RendezvousService(host.libp2p)  # registers its stream handler
        task_status.started()
        await trio.sleep_forever()


class ShardRendezvous:
    """Registers us under our shards at every rendezvous point we are connected to, and
    reports the peers registered there."""

    name = "rendezvous"

    def __init__(
        self,
        cluster_id: int,
        shards: Iterable[int],
        on_discovered: Callable[[ShardPeer], None],
        *,
        discover_interval: float = DISCOVER_INTERVAL,
        ttl: int = REGISTRATION_TTL,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.cluster_id = cluster_id
        self.shards = tuple(sorted(set(shards)))
        self.on_discovered = on_discovered
        self.discover_interval = discover_interval
        self.ttl = ttl
        self.request_timeout = request_timeout
        self._registered_at: dict[tuple[ID, int], float] = {}
        self._wake = trio.Event()
        self.registrations = 0
        self.failures = 0

    def points(self, host: WakuHost) -> list[ID]:
        """Connected peers whose identify lists the rendezvous protocol."""
        store = host.libp2p.get_peerstore()
        found = []
        for peer in host.connected_peers():
            try:
                protocols = store.get_protocols(peer)
            except Exception:
                continue
            if RENDEZVOUS_PROTOCOL in protocols:
                found.append(peer)
        return found

    def refresh(self) -> None:
        """Register and discover now (a new point connected, a community shard joined)."""
        self._wake.set()

    def set_shards(self, shards: Iterable[int]) -> None:
        """Follow the shards we relay: a shard joined (a community's) is registered and
        discovered at once; one left is no longer renewed (its registrations lapse at their
        TTL)."""
        wanted = tuple(sorted(set(shards)))
        if wanted == self.shards:
            return
        self._registered_at = {
            key: at for key, at in self._registered_at.items() if key[1] in wanted
        }
        self.shards = wanted
        self.refresh()

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        asked: set[ID] = set()
        full_round_at = trio.current_time()
        while True:
            points = self.points(host)
            if self._wake.is_set() or trio.current_time() >= full_round_at:
                self._wake = trio.Event()
                full_round_at = trio.current_time() + self.discover_interval
                due = points
            else:  # a point that connected (and identified) since: ask it now
                due = [point for point in points if point not in asked]
            for point in due:
                await self.round(host, point)
            asked = set(points)
            wait = min(POINT_CHECK_INTERVAL, max(0.0, full_round_at - trio.current_time()))
            with trio.move_on_after(wait):
                await self._wake.wait()

    async def round(self, host: WakuHost, point: ID) -> list[ShardPeer]:
        """Register (when due) and discover on every shard at one point; returns what it found."""
        client = RendezvousClient(host.libp2p, point)
        found: list[ShardPeer] = []
        own = host.peer_id
        for shard in self.shards:
            namespace = shard_namespace(self.cluster_id, shard)
            try:
                with trio.fail_after(self.request_timeout):
                    await self._register_if_due(client, point, shard, namespace)
                    peers, _cookie = await client.discover(namespace, DISCOVER_LIMIT)
            except (RendezvousError, trio.TooSlowError, ValueError, OSError) as exc:
                self.failures += 1
                log.info("rendezvous at %s for shard %s failed: %s", point, shard, exc)
                continue
            except Exception as exc:  # a stream that broke under us: the point went away
                self.failures += 1
                log.info("rendezvous at %s for shard %s failed: %r", point, shard, exc)
                continue
            for info in peers:
                if info.peer_id == own or not info.addrs:
                    continue
                peer = ShardPeer(info.peer_id, tuple(info.addrs), shard)
                found.append(peer)
                self.on_discovered(peer)
        return found

    async def _register_if_due(
        self, client: RendezvousClient, point: ID, shard: int, namespace: str
    ) -> None:
        now = trio.current_time()
        last = self._registered_at.get((point, shard))
        if last is not None and now - last < self.ttl / 2:
            return
        await client.register(namespace, self.ttl)
        self._registered_at[(point, shard)] = now
        self.registrations += 1
