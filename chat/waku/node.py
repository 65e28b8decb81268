"""A Waku node: one host plus the protocol services mounted on it, with one lifetime.

A service is anything with a `name` and `async serve(host, *, task_status)` that registers
its stream handlers, calls `task_status.started()` and then runs until cancelled. Mounting
one is a single `node.mount(service)` call, before or after the node starts; the node starts
services in mount order inside its own nursery and cancels them all when it stops.
Metadata is always mounted: without it nwaku peers drop us within seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.bandwidth_taps import roll_buckets
from chat.waku.host import (
    DEFAULT_INBOUND_LIMITS,
    HostError,
    TaskStatusLike,
    WakuHost,
    generate_node_key,
)
from chat.waku.inbound_limits import MAX_CONNECTIONS, InboundLimits
from chat.waku.metadata.service import MetadataService
from chat.waku.network import DEFAULT_CLUSTER_ID, DEFAULT_SHARDS

log = logging.getLogger(__name__)

PEER_REDIAL_MIN = 1.0
PEER_REDIAL_MAX = 60.0
STABLE_CONNECTION = 60.0
"""A static peer connection that lasted this long resets the redial backoff."""
DISCONNECT_RECHECK = 5.0


class NodeService(Protocol):
    name: str

    async def serve(self, host: WakuHost, *, task_status: TaskStatusLike = ...) -> None: ...


@dataclass(frozen=True)
class NodeConfig:
    listen_addrs: Sequence[Multiaddr]
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    static_peers: tuple[str, ...] = ()
    """Full multiaddrs the node keeps connected, redialling with backoff."""
    key_pair: KeyPair = field(default_factory=generate_node_key)
    inbound_limits: InboundLimits = DEFAULT_INBOUND_LIMITS
    """What unauthenticated and open inbound connections one source and all may hold."""
    max_connections: int = MAX_CONNECTIONS


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host = WakuHost(
            config.key_pair,
            config.listen_addrs,
            inbound_limits=config.inbound_limits,
            max_connections=config.max_connections,
        )
        self.metadata = MetadataService(config.cluster_id, config.shards)
        self._services: list[NodeService] = []
        self._nursery: trio.Nursery | None = None
        self._stopped = False
        self._pending_mount: list[NodeService] = [self.metadata]

    @property
    def services(self) -> list[NodeService]:
        return list(self._services)

    @property
    def running(self) -> bool:
        return self._nursery is not None and not self._stopped

    async def mount(self, service: NodeService) -> None:
        """Add a service; it starts now if the node runs, else when the node starts."""
        if self._nursery is None:
            self._pending_mount.append(service)
            return
        await self._start_service(self._nursery, service)

    async def _start_service(self, nursery: trio.Nursery, service: NodeService) -> None:
        await nursery.start(_serve, service, self.host)
        self._services.append(service)
        log.info("mounted %s", service.name)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Node]:
        """Listen, start every mounted service, dial static peers; stop all on exit."""
        async with self.host.running(), trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(roll_buckets, self.host.bandwidth)
            try:
                for service in self._pending_mount:
                    await self._start_service(nursery, service)
                self._pending_mount.clear()
                for addr in self.config.static_peers:
                    nursery.start_soon(self._keep_connected, addr)
                yield self
            finally:
                self._stopped = True
                nursery.cancel_scope.cancel()

    def full_multiaddrs(self) -> list[Multiaddr]:
        return self.host.full_multiaddrs()

    async def _keep_connected(self, addr: str) -> None:
        """Dial a static peer, and again whenever it drops, backing off on failure."""
        backoff = PEER_REDIAL_MIN
        while True:
            try:
                peer = await self.host.dial(addr)
            except HostError as exc:
                log.warning("static peer %s: %s; retrying in %.0f s", addr, exc, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, PEER_REDIAL_MAX)
                continue
            connected_at = trio.current_time()
            log.info("connected to static peer %s", addr)
            await self._wait_disconnected(peer)
            if trio.current_time() - connected_at >= STABLE_CONNECTION:
                backoff = PEER_REDIAL_MIN
            log.info("static peer %s disconnected; redialling in %.0f s", addr, backoff)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, PEER_REDIAL_MAX)

    async def _wait_disconnected(self, peer: ID) -> None:
        events = self.host.events.subscribe()
        async with events:
            # Re-check now and then too: a full event channel may have dropped the close event.
            while self.host.is_connected(peer):
                with trio.move_on_after(DISCONNECT_RECHECK):
                    async for event in events:
                        if event.peer_id == peer:
                            break


async def _serve(
    service: NodeService,
    host: WakuHost,
    *,
    # Any: mypy sees trio-typing's stubs here, whose TaskStatus differs from trio's own.
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    await service.serve(host, task_status=task_status)
