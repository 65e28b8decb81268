"""The peer manager driver: a node service that carries out what `chat.waku.peers` decides.

It feeds the sans-IO `PeerManager` with what the node sees — connections opening and
closing (host events), metadata verdicts (shards; other clusters are banned), the protocols
identify reports (which services a peer offers) — and executes its `Dial`/`Disconnect`
actions on a steady tick. Candidates come from the fleet file and `--peer`
(`add_address`, static: never forgotten) and from discovery (`add_discovered`: mDNS,
rendezvous; forgotten after repeated failures).

The messenger asks `store_peers()` for store nodes best first, and reports each request's
outcome with `record(peer, Service.STORE, ok)`: a peer failing twice in a row is set aside
for a while and the next one is used (and dialled if needed). After sleep or a network change
the health driver calls `reset()`: every connection is dropped and old backoffs are cleared.

While no peer is connected, known peers are redialled every few seconds (the core's
`offline_redial`); `dial_schedule()` says when the next dial is due, and `redial_now()`
dials at once when the user asks. Never two dials to one peer at once: a dial on a slow
link may take the whole 30 s, and one that the core already counted as timed out is still
left to finish before that peer is dialled again.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import trio
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from chat.waku.dial_failures import dial_failure_cause
from chat.waku.filter.wire import SUBSCRIBE_PROTOCOL
from chat.waku.host import ConnectionEvent, ConnectionEventKind, TaskStatusLike, WakuHost
from chat.waku.lightpush.wire import PROTOCOL_V2, PROTOCOL_V3
from chat.waku.metadata.core import MetadataOutcome, Verdict
from chat.waku.metadata.service import MetadataService
from chat.waku.peers import Action, Dial, Disconnect, PeerManager, PeerPolicy, Service
from chat.waku.relay.wire import RELAY_PROTOCOL
from chat.waku.store.wire import PROTOCOL_ID as STORE_PROTOCOL

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0
DIAL_TIMEOUT = 30.0
"""One dial attempt (every address of the peer) gives up after this long: the core's
PeerPolicy.dial_timeout. A dial is TCP, Noise and muxer negotiation, five round trips or so;
on a 1 s, lossy link that takes 10-20 s (a refused or unreachable address fails at once)."""
MAX_ADDRS_PER_PEER = 16
"""Addresses kept per discovered peer: a LAN announcement cannot grow this without bound."""

PROTOCOL_SERVICES: dict[str, Service] = {
    RELAY_PROTOCOL: Service.RELAY,
    STORE_PROTOCOL: Service.STORE,
    SUBSCRIBE_PROTOCOL: Service.FILTER,
    PROTOCOL_V3: Service.LIGHTPUSH,
    PROTOCOL_V2: Service.LIGHTPUSH,
}


def services_from_protocols(protocols: Iterable[str]) -> frozenset[Service]:
    return frozenset(PROTOCOL_SERVICES[p] for p in protocols if p in PROTOCOL_SERVICES)


@dataclass(frozen=True)
class DialSchedule:
    """What the faces show while we are offline: when the next dial is due, in seconds from
    now (None: online, every known peer being dialled, or no peer known), how many dials
    are under way, and how many peers we know to dial."""

    next_dial_in: float | None
    dialing: int
    known_peers: int


@dataclass(frozen=True)
class PeerManagerStats:
    dials_started: int
    dials_failed: int
    connected: int
    dials_in_flight: int


class PeerManagerService:
    name = "peer-manager"

    def __init__(
        self,
        shards: Iterable[int],
        *,
        metadata: MetadataService | None = None,
        policy: PeerPolicy | None = None,
        rng: random.Random | None = None,
        tick_interval: float = TICK_INTERVAL,
        dial_timeout: float = DIAL_TIMEOUT,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.core = PeerManager(shards, rng or random.Random(), policy)
        self.metadata = metadata
        self.tick_interval = tick_interval
        self.dial_timeout = dial_timeout
        self._clock = clock
        self._addrs: dict[str, list[Multiaddr]] = {}
        self._host: WakuHost | None = None
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._changed: list[trio.MemorySendChannel[None]] = []
        self._dialing: set[str] = set()
        """Peers with a dial task running (it may outlive the core's own timeout)."""
        self.dial_failures: Counter[str] = Counter()
        """Failed dials since start by cause (chat/waku/dial_failures.py), for telemetry."""

    # --- candidates -------------------------------------------------------------------------

    def add_address(
        self, addr: str | Multiaddr, services: Iterable[Service] = (Service.RELAY,)
    ) -> str:
        """A peer from the fleet file or `--peer`: kept connected, never forgotten."""
        full = Multiaddr(str(addr))
        peer = str(full.value_for_protocol("p2p"))
        self._remember(peer, [full.decapsulate(Multiaddr(f"/p2p/{peer}"))])
        self.core.add_peer(peer, services=services, static=True)
        self.poke()
        return peer

    def add_addresses(
        self, addrs: Sequence[str], services: Iterable[Service] = (Service.RELAY,)
    ) -> None:
        for addr in addrs:
            self.add_address(addr, services)

    def add_discovered(
        self,
        peer: ID | str,
        addrs: Sequence[Multiaddr],
        services: Iterable[Service] = (Service.RELAY,),
        shards: Iterable[int] | None = None,
    ) -> None:
        """A peer found by mDNS or rendezvous; forgotten after repeated dial failures."""
        peer_text = str(peer)
        if self._host is not None and peer_text == str(self._host.peer_id):
            return
        if self.core.is_banned(peer_text):
            return
        self._remember(peer_text, list(addrs))
        self.core.add_peer(peer_text, services=services, shards=shards)
        self.poke()

    def addresses_of(self, peer: ID | str) -> list[Multiaddr]:
        """The addresses we dial the peer at (fleet, flags, discovery), newest first."""
        return list(self._addrs.get(str(peer), ()))

    def _remember(self, peer: str, addrs: list[Multiaddr]) -> None:
        known = self._addrs.setdefault(peer, [])
        for addr in addrs:
            if addr not in known:
                known.insert(0, addr)  # the newest announcement is the likeliest to work
        del known[MAX_ADDRS_PER_PEER:]

    # --- what the messenger and health use --------------------------------------------------

    def store_peers(self) -> list[ID]:
        """Connected store peers not set aside, best score first (try them in order)."""
        return self.service_peers(Service.STORE)

    def service_peers(self, service: Service) -> list[ID]:
        return [ID.from_base58(p) for p in self.core.service_peers(service, self._clock())]

    def record(self, peer: ID | str, service: Service, ok: bool) -> None:
        """The outcome of one request (a store query, a light push) to `peer`."""
        self.core.service_result(str(peer), service, ok, self._clock())
        if not ok:
            self.poke()  # a failover may need a dial
        self._notify()

    def peers_per_shard(self) -> dict[int, int]:
        return self.core.peers_per_shard()

    def services_reachable(self) -> dict[Service, bool]:
        now = self._clock()
        return {svc: bool(self.core.service_peers(svc, now)) for svc in Service}

    def connected_peers(self) -> list[ID]:
        return [ID.from_base58(p) for p in sorted(self.core.connected_peers())]

    def stats(self) -> PeerManagerStats:
        return PeerManagerStats(
            dials_started=self.core.dials_started,
            dials_failed=self.core.dials_failed,
            connected=len(self.core.connected_peers()),
            dials_in_flight=self.core.dials_in_flight(),
        )

    def dial_schedule(self) -> DialSchedule:
        now = self._clock()
        at = self.core.next_redial_at(now)
        return DialSchedule(
            next_dial_in=None if at is None else max(0.0, at - now),
            dialing=self.core.dials_in_flight(),
            known_peers=self.core.known_peers(now),
        )

    async def redial_now(self) -> int:
        """Dial every known peer that is neither connected nor being dialled, now (within
        the dial limits). Returns the dials under way afterwards."""
        await self._execute(self.core.redial_now(self._clock()))
        self._notify()
        return self.core.dials_in_flight()

    def subscribe(self, buffer: int = 16) -> trio.MemoryReceiveChannel[None]:
        """A nudge whenever connectivity may have changed (coalesced when unread)."""
        send, receive = trio.open_memory_channel[None](buffer)
        self._changed.append(send)
        return receive

    def poke(self) -> None:
        """Run a tick now instead of at the next interval."""
        self._wake.set()

    def clear_backoffs(self) -> None:
        self.core.clear_backoffs()
        self.poke()

    async def reset(self, reason: str) -> None:
        """Drop every connection and forget backoffs: the network under us changed."""
        log.info("resetting connections: %s", reason)
        self.core.clear_backoffs()
        await self._execute(self.core.disconnect_all(reason))
        self.poke()

    # --- the service ------------------------------------------------------------------------

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._host = host
        events = host.events.subscribe()
        outcomes = self.metadata.subscribe() if self.metadata is not None else None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._follow_connections, host, events)
            if outcomes is not None:
                nursery.start_soon(self._follow_metadata, outcomes)
            for peer in host.connected_peers():
                self._on_connected(peer)
            task_status.started()
            await self._tick_loop(host)

    async def _tick_loop(self, host: WakuHost) -> None:
        while True:
            self._learn_services(host)
            await self._execute(self.core.tick(self._clock()))
            with trio.move_on_after(self.tick_interval):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _follow_connections(
        self, host: WakuHost, events: trio.MemoryReceiveChannel[ConnectionEvent]
    ) -> None:
        async for event in events:
            peer = event.peer_id
            if event.kind is ConnectionEventKind.OPENED:
                self._on_connected(peer)
            elif not host.is_connected(peer):
                self.core.disconnected(str(peer), self._clock())
                self._notify()
                self.poke()

    def _on_connected(self, peer: ID) -> None:
        actions = self.core.connected(str(peer), self._clock())
        self._notify()
        if actions and self._nursery is not None:
            self._nursery.start_soon(self._execute, actions)

    async def _follow_metadata(self, outcomes: trio.MemoryReceiveChannel[MetadataOutcome]) -> None:
        async for outcome in outcomes:
            peer = str(outcome.peer_id)
            if outcome.verdict is Verdict.ACCEPTED and outcome.remote is not None:
                self.core.add_peer(peer, services=(), shards=outcome.remote.shards)
            elif outcome.verdict in (Verdict.WRONG_CLUSTER, Verdict.NO_CLUSTER):
                log.info("peer %s is not on our cluster: never dialled again", peer)
                await self._execute(self.core.cluster_mismatch(peer))
                self._addrs.pop(peer, None)
            self._notify()

    def _learn_services(self, host: WakuHost) -> None:
        """Identify fills the peerstore's protocols shortly after a connection opens."""
        store = host.libp2p.get_peerstore()
        changed = False
        for peer in self.core.connected_peers():
            try:
                protocols = store.get_protocols(ID.from_base58(peer))
            except Exception:
                continue
            services = services_from_protocols(str(p) for p in protocols)
            if not services <= self.core.services_of(peer):
                self.core.add_peer(peer, services=services)
                changed = True
        if changed:
            self._notify()

    async def _execute(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Dial):
                if action.peer in self._dialing:
                    # The core gave up on the last dial, which is still running: its outcome
                    # answers this dial too (never two dials to one peer at once).
                    log.debug("dial to %s still under way; not starting another", action.peer)
                elif self._nursery is not None:
                    self._dialing.add(action.peer)
                    self._nursery.start_soon(self._dial, action.peer)
                    self._notify()
            elif isinstance(action, Disconnect) and self._host is not None:
                log.info("disconnecting %s: %s", action.peer, action.reason)
                await self._host.disconnect(ID.from_base58(action.peer))
                self._notify()

    async def _dial(self, peer: str) -> None:
        try:
            await self._dial_once(peer)
        finally:
            self._dialing.discard(peer)

    async def _dial_once(self, peer: str) -> None:
        assert self._host is not None
        addrs = list(self._addrs.get(peer, ()))
        peer_id = ID.from_base58(peer)
        ok = False
        cause = "timeout" if addrs else "other"
        if addrs:
            # py-libp2p blocks a peer for 60 s after a dial where every address failed (its
            # "negative cache"): a 2 s outage would cost a minute. Backoff is ours to decide.
            network = self._host.libp2p.get_network()
            if isinstance(network, Swarm):
                network.unblock_peer(peer_id)
            with trio.move_on_after(self.dial_timeout):
                try:
                    await self._host.libp2p.connect(PeerInfo(peer_id, addrs))
                    ok = True
                except Exception as exc:
                    log.debug("dial %s failed: %r", peer, exc)
                    cause = dial_failure_cause(exc)
        now = self._clock()
        if ok and self._host.is_connected(peer_id):
            await self._execute(self.core.connected(peer, now))
        else:
            # Counted once: the core's own timeout (as long as ours) may have counted it.
            if self.core.dialing(peer):
                self.core.dial_failed(peer, now)
            self.dial_failures[cause if not ok else "other"] += 1
            log.info("could not reach %s; next try in %.1f s", peer, self._retry_in(peer, now))
        self._notify()

    def _retry_in(self, peer: str, now: float) -> float:
        at = self.core.next_dial_at(peer)
        return 0.0 if at is None else max(0.0, at - now)

    def _notify(self) -> None:
        for channel in list(self._changed):
            try:
                channel.send_nowait(None)
            except trio.WouldBlock:
                pass  # an unread nudge is already waiting: that is enough
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._changed.remove(channel)
