"""An in-process stand-in for the network side of a messenger, for unit tests of the
messenger's own logic (the integration tests run it on real nodes).

`FakeNode` has the shape of `chat.messenger.node.MessengerNode` (what the messenger uses of
`chat.client_node.ClientNode`) without sockets: what one node publishes reaches every other
online node on the same `FakeNetwork` at once, as relay would deliver it. The network's
store is real store code on a real archive: every published message goes into a
`SqliteArchive` in memory, and queries are answered by the store server's own planner
(`chat.waku.store.server_core`). Tests steer the network: take a node offline (its publishes
reach no peer), lose a node's next messages on the way, keep the store from storing or
answering, or hand a node a message directly (a replay, a forgery, a store copy).

`InlineStore` runs the profile DB's calls on the calling thread, so that under
`trio.testing.MockClock` virtual time stands still while a call runs (on a worker thread,
the autojumping clock would move on meanwhile).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

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
from chat.waku.store.client import StoreClientError
from chat.waku.store.server_core import QueryPlan, answer, plan_request
from chat.waku.store.wire import MessageKeyValue, StoreQueryRequest
from chat.waku.topics import RelayShard
from storage.aio import AsyncStore
from storage.archive.base import ArchiveRecord
from storage.archive.sqlite import SqliteArchive
from storage.store import Store

T = TypeVar("T")

CLUSTER = 42
WALL_CLOCK_START = 1_700_000_000.0
"""Virtual wall time when a MockClock reads 0 (message timestamps look like real ones)."""


def mock_wall_clock(start: float = WALL_CLOCK_START) -> Callable[[], float]:
    """A messenger clock that follows trio's (mock) clock."""
    return lambda: start + trio.current_time()


class InlineStore(AsyncStore):
    """The real profile store, each call run on the calling thread."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.store = store

    async def run(self, call: Callable[[Store], T]) -> T:
        await trio.lowlevel.checkpoint()
        return call(self.store)


class StallingStore(InlineStore):
    """A profile disk that can stall: while stalled, every call waits (as a call waits for the
    one DB thread while a slow write holds it), and a call cancelled while it waits is never
    made, as with the real store."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._going = trio.Event()
        self._going.set()
        self._let_through = 0
        self.waiting = 0
        """Calls waiting for the disk now."""

    def stall(self, after: int = 0) -> None:
        """Stall from the call after the next `after` calls on."""
        self._going = trio.Event()
        self._let_through = after

    def resume(self) -> None:
        self._going.set()

    async def run(self, call: Callable[[Store], T]) -> T:
        if self._let_through > 0:
            self._let_through -= 1
        elif not self._going.is_set():
            self.waiting += 1
            try:
                await self._going.wait()
            finally:
                self.waiting -= 1
        return await super().run(call)


class FakeHealth:
    """The node's health monitor, as the messenger sees it: a summary tests can set, and
    the catch-up and reset callbacks the messenger registers, for tests to call."""

    def __init__(self, shards: Sequence[int]) -> None:
        self.state = HealthState.ONLINE
        self._shards = tuple(shards)
        self.catch_up: CatchUp | None = None
        self.resets: list[OnReset] = []
        self._subscribers: list[trio.MemorySendChannel[HealthSummary]] = []

    def summary(self) -> HealthSummary:
        online = self.state is HealthState.ONLINE
        return HealthSummary(
            state=self.state,
            peers_per_shard=tuple((s, 1 if online else 0) for s in self._shards),
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

    def set_state(self, state: HealthState) -> None:
        self.state = state
        for channel in self._subscribers:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait(self.summary())


class FakeStoreClient:
    """The store client's two calls, answered from the network's archive."""

    def __init__(self, network: FakeNetwork) -> None:
        self._network = network
        self.queries: list[StoreQueryRequest] = []

    async def query_all(self, peer_id: Any, request: StoreQueryRequest) -> list[MessageKeyValue]:
        await trio.lowlevel.checkpoint()
        if not self._network.store_answers:
            raise StoreClientError("no store response within 10 s")
        self.queries.append(request)
        results: list[MessageKeyValue] = []
        while True:
            plan = plan_request(request)
            if not isinstance(plan, QueryPlan):
                raise StoreClientError(f"store refused the query: {plan.status_desc}")
            response = answer(plan, self._network.archive.query(plan.archive_query))
            results.extend(response.messages)
            if response.pagination_cursor is None:
                return results
            request = replace(request, pagination_cursor=response.pagination_cursor)

    async def present(self, peer_id: Any, message_hashes: Sequence[bytes]) -> set[bytes]:
        request = StoreQueryRequest(
            request_id="presence",
            message_hashes=tuple(dict.fromkeys(message_hashes)),
            pagination_forward=True,
        )
        return {kv.message_hash for kv in await self.query_all(peer_id, request)}


@dataclass
class FakeNode:
    network: FakeNetwork
    name: str
    shards: tuple[int, ...] = (0, 1)
    online: bool = True
    refuse: str | None = None
    """Refuse every publish with this reason (as our validators refuse a bad message)."""
    lose_next: int = 0
    """Publishes that count as sent but never arrive anywhere (lost on the way)."""
    peers_miss_next: int = 0
    """Publishes that reach the store but no peer (a gap only the store can fill)."""
    published: list[tuple[str, WakuMessage]] = field(default_factory=list)
    """Everything this node put on the network."""
    store_results: list[bool] = field(default_factory=list)
    """What the messenger recorded about each store query (record_store)."""
    schedule: DialSchedule = field(default_factory=lambda: DialSchedule(None, 0, 1))
    """What the peer manager would say of its dials (tests set it with `set_schedule`)."""
    redials: int = 0
    """How often the messenger asked to redial at once."""

    def __post_init__(self) -> None:
        self.peer_id = ID(self.name.encode())
        self._inbox_send, self._inbox = trio.open_memory_channel[Received](4096)
        self.health = FakeHealth(self.shards)
        self._connections: list[trio.MemorySendChannel[Any]] = []
        self._dial_changes: list[trio.MemorySendChannel[None]] = []
        self._relay_changed = trio.Event()
        self.bandwidth = BandwidthMeter(0.0)
        """Nothing goes over a wire here; the messenger's classifier is still registered."""

    # ---- MessengerNode ---------------------------------------------------------------------
    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Received]:
        return self._inbox

    @property
    def pubsub_topics(self) -> list[str]:
        joined = getattr(self, "joined_shards", [])
        return [self.pubsub_topic(s) for s in self.shards] + joined

    def signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        """As published: the fake network signs nothing."""
        return message

    def join_shard(self, pubsub_topic: str, key_pair: Any = None, public_key: Any = None) -> None:
        """A community's shard: listed as one of ours (the fake network carries every topic)."""
        joined: list[str] = getattr(self, "joined_shards", [])
        if pubsub_topic not in joined and pubsub_topic not in self.pubsub_topics:
            joined.append(pubsub_topic)
        self.joined_shards = joined

    @property
    def store(self) -> FakeStoreClient:
        return self.network.store_client

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[FakeNode]:
        yield self

    def pubsub_topic(self, shard: int) -> str:
        return RelayShard(CLUSTER, shard).pubsub_topic

    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        if self.refuse is not None:
            raise ValueError(self.refuse)
        reached = len(self.network.reachable_from(self)) + int(self.network.store_keeps)
        if not self.online or not reached:
            raise NoPeersReached(pubsub_topic)
        self.published.append((pubsub_topic, message))
        if self.lose_next > 0:
            self.lose_next -= 1
        elif self.peers_miss_next > 0:
            self.peers_miss_next -= 1
            self.network.archive_message(pubsub_topic, message)
        else:
            self.network.carry(self, pubsub_topic, message)
        return reached

    def full_multiaddrs(self) -> list[str]:
        return [f"/memory/{self.name}/p2p/{self.peer_id}"]

    def connected_peers(self) -> list[ID]:
        return [n.peer_id for n in self.network.reachable_from(self)]

    def relay_peers(self) -> dict[str, int]:
        count = len(self.network.reachable_from(self)) if self.online else 0
        return {topic: count for topic in self.pubsub_topics}

    def store_peers(self) -> list[ID]:
        return [self.network.store_id] if self.online and self.network.store_keeps else []

    def record_store(self, peer: ID, ok: bool) -> None:
        self.store_results.append(ok)

    def connection_events(self) -> trio.MemoryReceiveChannel[Any]:
        send, receive = trio.open_memory_channel[Any](64)
        self._connections.append(send)
        return receive

    async def wait_relay_peers(self, *, present: bool) -> None:
        while bool(self.relay_peers()[self.pubsub_topics[0]]) != present:
            await self._relay_changed.wait()

    def dial_schedule(self) -> DialSchedule:
        return self.schedule

    def dial_changes(self) -> trio.MemoryReceiveChannel[None]:
        send, receive = trio.open_memory_channel[None](16)
        self._dial_changes.append(send)
        return receive

    async def redial_now(self) -> int:
        await trio.lowlevel.checkpoint()
        self.redials += 1
        self.set_schedule(replace(self.schedule, next_dial_in=None, dialing=1))
        return 1

    # ---- steering --------------------------------------------------------------------------
    def deliver(self, pubsub_topic: str, message: WakuMessage, via: str = "relay") -> None:
        """Hand this node a message as if relay (or a store) brought it."""
        self._inbox_send.send_nowait(
            Received(pubsub_topic, message, message.hash(pubsub_topic), via)
        )

    def set_schedule(self, schedule: DialSchedule) -> None:
        """The peer manager's dials changed: the messenger is nudged, as by the real one."""
        self.schedule = schedule
        for channel in self._dial_changes:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait(None)

    def set_online(self, online: bool) -> None:
        """Connections drop or return: peers see it as relay would."""
        self.online = online
        self.network.connectivity_changed()

    def _connectivity_changed(self) -> None:
        self._relay_changed.set()
        self._relay_changed = trio.Event()
        for channel in self._connections:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait("changed")


class FakeNetwork:
    """Nodes that reach each other at once, and one store node."""

    def __init__(self) -> None:
        self.archive = SqliteArchive(":memory:")
        self.store_client = FakeStoreClient(self)
        self.store_id = ID(b"fake-store-node")
        self.store_keeps = True
        """Whether the store node archives what is published (and is there at all)."""
        self.store_answers = True
        """Whether store queries get an answer."""
        self.nodes: list[FakeNode] = []

    def node(self, name: str) -> FakeNode:
        node = FakeNode(self, name)
        self.nodes.append(node)
        return node

    def reachable_from(self, sender: FakeNode) -> list[FakeNode]:
        if not sender.online:
            return []
        return [n for n in self.nodes if n is not sender and n.online]

    def carry(self, sender: FakeNode, pubsub_topic: str, message: WakuMessage) -> None:
        self.archive_message(pubsub_topic, message)
        for node in self.reachable_from(sender):
            node.deliver(pubsub_topic, message)

    def archive_message(self, pubsub_topic: str, message: WakuMessage) -> None:
        if self.store_keeps:
            self.archive.insert(
                ArchiveRecord(
                    message.hash(pubsub_topic),
                    pubsub_topic,
                    message.content_topic,
                    message.timestamp,
                    message.encode(),
                )
            )

    def connectivity_changed(self) -> None:
        for node in self.nodes:
            node._connectivity_changed()

    def close(self) -> None:
        self.archive.close()
