"""Simulated service nodes and the client nodes messengers run on, for `chinwag lab sim`'s
messenger mode: the production counterpart of the unit tests' in-process node, with faults.

Each client attaches to one service node (relay and store). A client's publish travels to its
service node, which archives it (the real store code on an in-memory `SqliteArchive`) and
relays it to the other service nodes and to its online clients; every service node relays
what it gets to its own clients. Every link has a one-way latency drawn once from the
scenario's distribution and loses frames with the scenario's probability; a partition cuts
the links between two groups of service nodes (their clients go with them); churn takes a
client offline (its links drop, its publishes reach no peer, its store queries time out).

Determinism: frames and timers are events in one heap ordered by (time, sequence number),
handled by one task. A link's latency is drawn from a generator seeded by the run's seed and
the link's ends; whether a frame is lost is a hash of the seed, the link, the instant and the
direction, so frames sent over one link at one instant share their fate. Nothing depends on
the order in which tasks ready at one instant run (trio picks it at random, and the
messengers' content topics, which order some of their work, differ from run to run). Store
answers break timestamp ties by arrival at the service node, not by hash (hashes differ from
run to run).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import itertools
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import trio
from libp2p.peer.id import ID

from chat.client_node import Received
from chat.waku.bandwidth import BandwidthMeter
from chat.waku.health import HealthState, HealthSummary
from chat.waku.health_monitor import CatchUp, OnReset
from chat.waku.message import WakuMessage
from chat.waku.peer_manager import DialSchedule
from chat.waku.peers import Service
from chat.waku.relay.core import NoPeersReached
from chat.waku.relay.sim import LatencyModel
from chat.waku.store.client import StoreClientError
from chat.waku.store.server_core import QueryPlan, answer, plan_request
from chat.waku.store.wire import MessageKeyValue, StoreQueryRequest
from chat.waku.topics import RelayShard
from storage.archive.base import ArchiveRecord
from storage.archive.sqlite import SqliteArchive

CLUSTER = 42
INBOX_SIZE = 4096
"""A client's inbox; what overflows is counted (the store checks fill such gaps)."""


LOSS_SCALE = float(1 << 64)


@dataclass(slots=True)
class Link:
    latency: float


@dataclass(slots=True)
class NetworkCounters:
    frames_sent: int = 0
    frames_lost: int = 0
    """Lost on a link (the scenario's loss)."""
    frames_cut: int = 0
    """Dropped by a partition or because an end was offline."""
    inbox_overflow: int = 0


class ServiceNode:
    """A relay and store node: what it archived, and when."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"s{index:02d}"
        self.peer_id = ID(self.name.encode())
        self.archive = SqliteArchive(":memory:")
        self.archived_at: dict[bytes, float] = {}
        self.position: dict[bytes, tuple[int, int]] = {}
        """Hash -> (timestamp, arrival number): the order answers list messages in."""
        self.clients: list[SimClientNode] = []

    def keep(self, pubsub_topic: str, message: WakuMessage, msg_hash: bytes, now: float) -> bool:
        """Archive it; False when it was here already (relay deduplicates by hash)."""
        if msg_hash in self.archived_at:
            return False
        self.archived_at[msg_hash] = now
        self.position[msg_hash] = (message.timestamp or 0, len(self.position))
        self.archive.insert(
            ArchiveRecord(
                msg_hash, pubsub_topic, message.content_topic, message.timestamp, message.encode()
            )
        )
        return True


class SimNetwork:
    """Service nodes, clients, links and the event loop that carries frames between them."""

    def __init__(
        self,
        *,
        seed: int,
        services: int,
        latency: LatencyModel,
        loss: float,
        store_timeout: float = 10.0,
    ) -> None:
        self.seed = seed
        self.latency = latency
        self.loss = loss
        self.store_timeout = store_timeout
        self.services = [ServiceNode(index) for index in range(services)]
        self.clients: dict[str, SimClientNode] = {}
        self.groups: dict[int, int] | None = None
        """Service node -> partition group while a partition holds."""
        self.counters = NetworkCounters()
        self._links: dict[tuple[str, str], Link] = {}
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    # ---- building --------------------------------------------------------------------------
    def client(self, name: str, service: int) -> SimClientNode:
        node = SimClientNode(self, name, self.services[service])
        self.services[service].clients.append(node)
        self.clients[name] = node
        return node

    def link(self, a: str, b: str) -> Link:
        key = (a, b) if a < b else (b, a)
        found = self._links.get(key)
        if found is None:
            rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}")
            found = self._links[key] = Link(self.latency(rng))
        return found

    def lost(self, a: str, b: str, now: float) -> bool:
        """Whether a frame from a to b sent at `now` is lost (see the module's note)."""
        if self.loss <= 0:
            return False
        key = f"{self.seed}:{a}:{b}:{now!r}".encode()
        draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        return draw / LOSS_SCALE < self.loss

    # ---- the event loop --------------------------------------------------------------------
    def schedule(self, at: float, callback: Callable[[float], None]) -> None:
        heapq.heappush(self._events, (at, next(self._seq), callback))
        self._wake.set()

    def spawn(self, task: Callable[[], Any]) -> None:
        """Run an async callback (a catch-up) in the network's nursery."""
        assert self._nursery is not None
        self._nursery.start_soon(task)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                if not self._events:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                at = self._events[0][0]
                if at > trio.current_time():
                    with trio.move_on_at(at):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                _, _, callback = heapq.heappop(self._events)
                callback(at)
                await trio.lowlevel.checkpoint()

    # ---- carrying frames -------------------------------------------------------------------
    def reachable(self, a: ServiceNode, b: ServiceNode) -> bool:
        return self.groups is None or self.groups[a.index] == self.groups[b.index]

    def _send(self, a: str, b: str, now: float, arrive: Callable[[float], None]) -> bool:
        """One frame over the link a-b; False when the link lost it."""
        link = self.link(a, b)
        self.counters.frames_sent += 1
        if self.lost(a, b, now):
            self.counters.frames_lost += 1
            return False
        self.schedule(now + link.latency, arrive)
        return True

    def published(self, sender: SimClientNode, pubsub_topic: str, message: WakuMessage) -> None:
        now = trio.current_time()
        received = Received(pubsub_topic, message, message.hash(pubsub_topic), "relay")
        service = sender.service
        self._send(sender.name, service.name, now, lambda t: self._at_service(service, received, t))

    def _at_service(self, service: ServiceNode, received: Received, now: float) -> None:
        """A frame reached a service node: archive it, relay it on (once)."""
        if not service.keep(received.pubsub_topic, received.message, received.msg_hash, now):
            return
        for other in self.services:
            if other is service:
                continue
            if not self.reachable(service, other):
                self.counters.frames_cut += 1
                continue
            self._send(
                service.name, other.name, now, functools.partial(self._at_service, other, received)
            )
        for client in service.clients:
            if not client.online:
                self.counters.frames_cut += 1
                continue
            self._send(service.name, client.name, now, functools.partial(client.arrive, received))

    # ---- faults ----------------------------------------------------------------------------
    def partition(self, groups: dict[int, int]) -> None:
        self.groups = groups
        for client in self.clients.values():
            client.connectivity_changed()

    def heal(self) -> None:
        self.groups = None
        for client in self.clients.values():
            client.connectivity_changed()

    def close(self) -> None:
        for service in self.services:
            service.archive.close()


class SimHealth:
    """The node's health monitor as the messenger sees it: online while the client is, and a
    catch-up (store scans from the cursors) each time it comes back, as the real one does."""

    def __init__(self, node: SimClientNode) -> None:
        self._node = node
        self.catch_up: CatchUp | None = None
        self.resets: list[OnReset] = []
        self._subscribers: list[trio.MemorySendChannel[HealthSummary]] = []

    def summary(self) -> HealthSummary:
        online = self._node.online
        return HealthSummary(
            state=HealthState.ONLINE if online else HealthState.OFFLINE,
            peers_per_shard=tuple((s, int(online)) for s in self._node.shards),
            services=((Service.STORE, online),),
            last_catch_up=None,
            catch_up_pending=False,
        )

    def subscribe(self, buffer: int = 64) -> trio.MemoryReceiveChannel[HealthSummary]:
        send, receive = trio.open_memory_channel[HealthSummary](buffer)
        send.send_nowait(self.summary())
        self._subscribers.append(send)
        return receive

    def set_catch_up(self, catch_up: CatchUp) -> None:
        self.catch_up = catch_up

    def on_reset(self, callback: OnReset) -> None:
        self.resets.append(callback)

    def changed(self) -> None:
        for channel in self._subscribers:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait(self.summary())


class SimStoreClient:
    """A client's store queries, answered by its service node's archive after a round trip;
    a lost frame, an offline client or a partition means no answer within the timeout."""

    def __init__(self, node: SimClientNode) -> None:
        self._node = node

    async def query_all(self, peer_id: Any, request: StoreQueryRequest) -> list[MessageKeyValue]:
        node, network = self._node, self._node.network
        service, now = node.service.name, trio.current_time()
        link = network.link(node.name, service)
        answered_at = now + link.latency
        lost = network.lost(node.name, service, now) or network.lost(
            service, node.name, answered_at
        )
        if not node.online or lost:
            await trio.sleep(network.store_timeout)
            raise StoreClientError(f"no store response within {network.store_timeout:g} s")
        await trio.sleep(link.latency)
        results: list[MessageKeyValue] = []
        while True:
            plan = plan_request(request)
            if not isinstance(plan, QueryPlan):
                raise StoreClientError(f"store refused the query: {plan.status_desc}")
            response = answer(plan, node.service.archive.query(plan.archive_query))
            results.extend(response.messages)
            if response.pagination_cursor is None:
                break
            request = replace(request, pagination_cursor=response.pagination_cursor)
        await trio.sleep(link.latency)
        # A real store breaks timestamp ties by hash, which differs per run (new keys, new
        # ciphertexts); here they are broken by arrival, so the answer's order repeats.
        position = node.service.position
        return sorted(results, key=lambda kv: position[kv.message_hash])

    async def present(self, peer_id: Any, message_hashes: Sequence[bytes]) -> set[bytes]:
        request = StoreQueryRequest(
            request_id="presence",
            message_hashes=tuple(dict.fromkeys(message_hashes)),
            pagination_forward=True,
        )
        return {kv.message_hash for kv in await self.query_all(peer_id, request)}


class SimClientNode:
    """What a messenger needs of its node (chat.messenger.node.MessengerNode), on the
    simulated network."""

    def __init__(self, network: SimNetwork, name: str, service: ServiceNode) -> None:
        self.network = network
        self.name = name
        self.service = service
        self.shards: tuple[int, ...] = (0, 1)
        self.online = True
        self.offline_since: float | None = None
        self.peer_id = ID(name.encode())
        self._inbox_send, self._inbox = trio.open_memory_channel[Received](INBOX_SIZE)
        self.health = SimHealth(self)
        self._store = SimStoreClient(self)
        self._joined: list[str] = []
        self._connections: list[trio.MemorySendChannel[Any]] = []
        self._relay_changed = trio.Event()
        self.bandwidth = BandwidthMeter(0.0)
        """Bytes are not metered here; the messenger's classifier is still registered."""

    # ---- MessengerNode ---------------------------------------------------------------------
    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Received]:
        return self._inbox

    @property
    def pubsub_topics(self) -> list[str]:
        return [self.pubsub_topic(s) for s in self.shards] + self._joined

    @property
    def store(self) -> SimStoreClient:
        return self._store

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[SimClientNode]:
        yield self

    def pubsub_topic(self, shard: int) -> str:
        return RelayShard(CLUSTER, shard).pubsub_topic

    def signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        return message

    def join_shard(self, pubsub_topic: str, key_pair: Any = None, public_key: Any = None) -> None:
        if pubsub_topic not in self.pubsub_topics:
            self._joined.append(pubsub_topic)

    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        if not self.online:
            raise NoPeersReached(pubsub_topic)
        self.network.published(self, pubsub_topic, message)
        return 1

    def full_multiaddrs(self) -> list[str]:
        return [f"/memory/{self.name}/p2p/{self.peer_id}"]

    def connected_peers(self) -> list[ID]:
        return [self.service.peer_id] if self.online else []

    def relay_peers(self) -> dict[str, int]:
        return dict.fromkeys(self.pubsub_topics, int(self.online))

    def store_peers(self) -> list[ID]:
        return [self.service.peer_id] if self.online else []

    def record_store(self, peer: ID, ok: bool) -> None:
        pass

    def connection_events(self) -> trio.MemoryReceiveChannel[Any]:
        send, receive = trio.open_memory_channel[Any](64)
        self._connections.append(send)
        return receive

    async def wait_relay_peers(self, *, present: bool) -> None:
        while self.online != present:
            await self._relay_changed.wait()

    def dial_schedule(self) -> DialSchedule:
        return DialSchedule(None, 0, 1)

    def dial_changes(self) -> trio.MemoryReceiveChannel[None]:
        _, receive = trio.open_memory_channel[None](1)
        return receive

    async def redial_now(self) -> int:
        await trio.lowlevel.checkpoint()
        return 0

    # ---- the network's side ----------------------------------------------------------------
    def arrive(self, received: Received, now: float) -> None:
        if not self.online:
            self.network.counters.frames_cut += 1
            return
        try:
            self._inbox_send.send_nowait(received)
        except trio.WouldBlock:
            self.network.counters.inbox_overflow += 1

    def set_online(self, online: bool) -> None:
        """Churn: the client's connections drop, or come back (then it catches up)."""
        if online == self.online:
            return
        self.online = online
        self.offline_since = None if online else trio.current_time()
        self.connectivity_changed()
        catch_up = self.health.catch_up
        if online and catch_up is not None:
            self.network.spawn(lambda: catch_up(None))

    def connectivity_changed(self) -> None:
        self._relay_changed.set()
        self._relay_changed = trio.Event()
        self.health.changed()
        for channel in self._connections:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait("changed")
