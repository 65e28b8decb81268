"""The health driver: a node service that runs `chat.waku.health` against the real world.

Every `tick_interval` it ticks the core with a clock that keeps running while the machine is
suspended (wall time by default, so a catch-up's `since` is a Unix time the store
understands); a gap of several ticks means we slept. It reports what the peer manager sees
(relay peers per shard, reachable services), the machine's local addresses (a change means a
new network), and keep-alive ping rounds to the connected peers. It carries out the core's
actions: a reset drops every connection through the peer manager, clears dial backoffs and
calls the `on_reset` callbacks (the messenger resubscribes there); a catch-up calls the
`catch_up` callback (the messenger's store query from `since`) and reports its outcome.

With `follow_relay(relay, topics)` (a chat client) it also watches the relay mesh on its
shards, woken by the relay driver whenever the mesh changes: ONLINE then needs a mesh peer on
every shard (see `chat.waku.health`).

Subscribers get every new `HealthSummary` (online / degraded / offline / sleeping, peers per
shard, service reachability, the time of the last successful catch-up).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeAlias

import trio
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.peer.id import ID

from chat.waku.health import (
    ClearBackoffs,
    HealthAction,
    HealthChanged,
    HealthMonitor,
    HealthPolicy,
    HealthSummary,
    PingPeers,
    ResetConnections,
    RunCatchUp,
)
from chat.waku.host import TaskStatusLike, WakuHost
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import Service
from chat.waku.relay.core import Router
from chat.waku.relay.service import RelayService

log = logging.getLogger(__name__)

CatchUp: TypeAlias = Callable[[float | None], Awaitable[bool]]
"""`await catch_up(since)` -> whether the store query from `since` (Unix seconds) worked."""
OnReset: TypeAlias = Callable[[str], Awaitable[None]]
"""`await on_reset(reason)` after every connection was dropped (sleep, network change)."""

DEFAULT_POLICY = HealthPolicy(tick_interval=1.0, sleep_after_ticks=5, keepalive_interval=10.0)
"""A 1 s beat: a sleep of over 5 s is noticed at the first tick after waking."""
PING_TIMEOUT = 7.0
PING_TRIES = 2
MAX_PINGED_PEERS = 10
ADDRESS_CHECK_EVERY = 5
"""Ticks between two looks at the local addresses."""


def local_addresses() -> frozenset[str]:
    """The source addresses the default routes would use: changes when the network does.

    A UDP connect sends nothing; it only asks the kernel which route and address it would use,
    so this is cheap enough to run every few seconds and works without any extra package.
    """
    found: set[str] = set()
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            found.add(str(sock.getsockname()[0]))
    return frozenset(found)


class HealthService:
    name = "health"

    def __init__(
        self,
        peer_manager: PeerManagerService,
        shards: Iterable[int],
        *,
        required_services: Iterable[Service] = (Service.STORE,),
        policy: HealthPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        addresses: Callable[[], frozenset[str]] = local_addresses,
        catch_up: CatchUp | None = None,
        ping_timeout: float = PING_TIMEOUT,
        ping_tries: int = PING_TRIES,
    ) -> None:
        self.peer_manager = peer_manager
        self.core = HealthMonitor(shards, required_services, policy)
        self.policy = policy
        self._clock = clock
        self._addresses = addresses
        self._catch_up = catch_up
        self._on_reset: list[OnReset] = []
        self.ping_timeout = ping_timeout
        self.ping_tries = ping_tries
        self._subscribers: list[trio.MemorySendChannel[HealthSummary]] = []
        self._relay: RelayService | None = None
        self._mesh_topics: dict[int, str] = {}
        self._host: WakuHost | None = None
        self._nursery: trio.Nursery | None = None
        self._pinging = False
        self._ticks = 0
        self.ping_rounds = 0

    # --- API --------------------------------------------------------------------------------

    def on_reset(self, callback: OnReset) -> None:
        """Called after a sleep, a network change or a dead network dropped every connection."""
        self._on_reset.append(callback)

    def follow_relay(self, relay: RelayService, topics: Mapping[int, str]) -> None:
        """Require a relay mesh peer on every shard for ONLINE; `topics` maps each shard to
        its pubsub topic. Call before the service starts."""
        self._relay = relay
        self._mesh_topics = dict(topics)
        self.core.require_mesh = True

    def mesh_per_shard(self, router: Router | None = None) -> dict[int, int]:
        """Relay peers serving each shard: our mesh, and live peers whose full mesh pruned us."""
        if self._relay is None:
            return {}
        serving = (router or self._relay.router).serving_peers
        return {shard: len(serving(topic)) for shard, topic in self._mesh_topics.items()}

    def set_catch_up(self, catch_up: CatchUp) -> None:
        self._catch_up = catch_up

    def summary(self) -> HealthSummary:
        return self.core.summary()

    def subscribe(self, buffer: int = 64) -> trio.MemoryReceiveChannel[HealthSummary]:
        """Every summary from now on, the current one first; a lagging subscriber loses some."""
        send, receive = trio.open_memory_channel[HealthSummary](buffer)
        send.send_nowait(self.summary())
        self._subscribers.append(send)
        return receive

    @property
    def sleeps_detected(self) -> int:
        return self.core.sleeps_detected

    @property
    def resets(self) -> int:
        return self.core.resets

    # --- the service ------------------------------------------------------------------------

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._host = host
        changes = self.peer_manager.subscribe()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._run(self.core.addresses(self._clock(), self._addresses()))
            await self._observe()
            nursery.start_soon(self._follow_peers, changes)
            if self._relay is not None:
                nursery.start_soon(self._follow_mesh, self._relay)
            task_status.started()
            while True:
                await self._tick()
                await trio.sleep(self.policy.tick_interval)

    async def _tick(self) -> None:
        now = self._clock()
        await self._run(self.core.tick(now))
        self._ticks += 1
        if self._ticks % ADDRESS_CHECK_EVERY == 0:
            await self._run(self.core.addresses(now, self._addresses()))
        await self._observe()

    async def _follow_peers(self, changes: trio.MemoryReceiveChannel[None]) -> None:
        async for _ in changes:
            await self._observe()

    async def _follow_mesh(self, relay: RelayService) -> None:
        while True:
            try:
                driver = relay.driver
            except RuntimeError:  # relay not started yet (or restarting): the tick observes
                await trio.sleep(self.policy.tick_interval)
                continue
            await driver.wait_until(self._mesh_differs_from(self.mesh_per_shard()))
            await self._observe()

    def _mesh_differs_from(self, mesh: Mapping[int, int]) -> Callable[[Router], bool]:
        # Only whether a shard has a mesh at all matters; sizes come with observations.
        meshed = self._meshed(mesh)
        return lambda router: self._meshed(self.mesh_per_shard(router)) != meshed

    @staticmethod
    def _meshed(mesh: Mapping[int, int]) -> frozenset[int]:
        return frozenset(shard for shard, peers in mesh.items() if peers > 0)

    async def _observe(self) -> None:
        pm = self.peer_manager
        mesh = self.mesh_per_shard() if self._relay is not None else None
        await self._run(
            self.core.observe(self._clock(), pm.peers_per_shard(), pm.services_reachable(), mesh)
        )

    async def _run(self, actions: list[HealthAction]) -> None:
        # Publish summaries first: a reset below emits the next state, which must come after.
        for action in actions:
            if isinstance(action, HealthChanged):
                self._publish(action.summary)
        for action in actions:
            if isinstance(action, ResetConnections):
                await self._reset(action.reason)
            elif isinstance(action, ClearBackoffs):
                self.peer_manager.clear_backoffs()
            elif isinstance(action, RunCatchUp):
                assert self._nursery is not None
                self._nursery.start_soon(self._run_catch_up, action.since)
            elif isinstance(action, PingPeers) and not self._pinging:
                assert self._nursery is not None
                self._pinging = True
                self._nursery.start_soon(self._ping_round)

    async def _reset(self, reason: str) -> None:
        log.info("health: %s; dropping every connection", reason)
        await self.peer_manager.reset(reason)
        for callback in list(self._on_reset):
            try:
                await callback(reason)
            except Exception:
                log.exception("a reset callback failed")
        await self._run(self.core.reset_done(self._clock()))

    async def _run_catch_up(self, since: float | None) -> None:
        ok = True
        if self._catch_up is not None:
            try:
                ok = await self._catch_up(since)
            except Exception:
                log.exception("catch-up failed")
                ok = False
        await self._run(self.core.catch_up_done(self._clock(), ok))

    async def _ping_round(self) -> None:
        try:
            peers = self.peer_manager.connected_peers()[:MAX_PINGED_PEERS]
            results: dict[ID, bool] = {}
            async with trio.open_nursery() as nursery:
                for peer in peers:
                    nursery.start_soon(self._ping_peer, peer, results)
            failed = [p for p, ok in results.items() if not ok]
            self.ping_rounds += 1
            for peer in failed:
                # A peer that answers no ping is gone even if TCP has not noticed yet.
                log.info("keep-alive: %s did not answer; disconnecting", peer)
                if self._host is not None:
                    await self._host.disconnect(peer)
            await self._run(
                self.core.ping_round(self._clock(), len(results) - len(failed), len(failed))
            )
        finally:
            self._pinging = False

    async def _ping_peer(self, peer: ID, results: dict[ID, bool]) -> None:
        assert self._host is not None
        for _ in range(self.ping_tries):
            with trio.move_on_after(self.ping_timeout):
                try:
                    stream = await self._host.libp2p.new_stream(peer, [TProtocol(PING_PROTOCOL)])
                    try:
                        await perform_ping_roundtrip(stream)
                    finally:
                        with contextlib.suppress(Exception):
                            await stream.close()
                    results[peer] = True
                    return
                except Exception as exc:
                    log.debug("ping %s failed: %r", peer, exc)
        results[peer] = False

    def _publish(self, summary: HealthSummary) -> None:
        log.info("health %s: peers per shard %s", summary.state.value, summary.shard_peers())
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(summary)
            except trio.WouldBlock:
                log.warning("a health subscriber is full; it misses a summary")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)
