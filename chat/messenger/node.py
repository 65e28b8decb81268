"""What the messenger needs of its node, as a type.

`chat.client_node.ClientNode` is the real one (relay, store client, connectivity); unit
tests give the messenger an in-process stand-in with the same shape
(tests/harness/fake_node.py). Nothing else of the node is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

import trio
from libp2p.peer.id import ID

from chat.client_node import Received
from chat.reliability.store_queries import StoreQuerier
from chat.waku.bandwidth import BandwidthMeter
from chat.waku.health import HealthSummary
from chat.waku.health_monitor import CatchUp, OnReset
from chat.waku.message import WakuMessage
from chat.waku.peer_manager import DialSchedule
from chat.waku.protected import ShardKeyPair, ShardPublicKey


class NodeHealth(Protocol):
    """The node's health monitor (chat/waku/health_monitor.py)."""

    def summary(self) -> HealthSummary: ...
    def subscribe(self, buffer: int = 64) -> trio.MemoryReceiveChannel[HealthSummary]: ...
    def set_catch_up(self, catch_up: CatchUp) -> None: ...
    def on_reset(self, callback: OnReset) -> None: ...


class MessengerNode(Protocol):
    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Received]:
        """Every message the network delivers to us (bounded; overflow is left to store scans)."""
        ...

    @property
    def pubsub_topics(self) -> Sequence[str]: ...

    @property
    def health(self) -> NodeHealth: ...

    @property
    def store(self) -> StoreQuerier: ...

    @property
    def bandwidth(self) -> BandwidthMeter:
        """The node's bandwidth meter (chat/waku/bandwidth.py); the messenger names what its
        content topics carry."""
        ...

    def run(self) -> AbstractAsyncContextManager[Any]: ...
    def pubsub_topic(self, shard: int) -> str: ...
    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        """Relay peers reached; raises NoPeersReached, or ValueError for a refused message."""
        ...

    def signed(self, pubsub_topic: str, message: WakuMessage) -> WakuMessage:
        """`message` as `publish` puts it on the wire: signed on a protected shard we hold
        the key of (deterministic), so its hash is the one store nodes list."""
        ...

    def join_shard(
        self,
        pubsub_topic: str,
        key_pair: ShardKeyPair | None = None,
        public_key: ShardPublicKey | None = None,
    ) -> None:
        """Relay a community's shard (chat/client_node.py); with its key pair, sign there."""
        ...

    def full_multiaddrs(self) -> list[str]: ...
    def connected_peers(self) -> Sequence[ID]: ...
    def relay_peers(self) -> dict[str, int]: ...
    def store_peers(self) -> list[ID]: ...
    def record_store(self, peer: ID, ok: bool) -> None: ...
    def connection_events(self) -> trio.MemoryReceiveChannel[Any]:
        """A subscription to connection opened/closed events."""
        ...

    async def wait_relay_peers(self, *, present: bool) -> None:
        """Returns once some relay peer is on one of our topics (`present`), or none is."""
        ...

    def dial_schedule(self) -> DialSchedule:
        """While offline: when the next dial is due; dials under way; peers known."""
        ...

    def dial_changes(self) -> trio.MemoryReceiveChannel[None]:
        """A nudge whenever dials start or end or connections change (coalesced)."""
        ...

    async def redial_now(self) -> int:
        """Dial every known peer that is not connected, now; the dials under way after."""
        ...


@runtime_checkable
class BootstrapNode(Protocol):
    """A node that can give and take bootstrap hints for a shard (a community link's
    multiaddrs); the relay client (`ClientNode`) can, a light node or a stand-in need not."""

    def bootstrap_addresses(self, pubsub_topic: str, limit: int, max_length: int) -> list[str]:
        """Full multiaddrs of connected peers on the shard (then rendezvous points)."""
        ...

    def add_bootstrap(self, pubsub_topic: str, addresses: Sequence[str]) -> int:
        """Dial hints for the shard while it lacks peers; bad ones logged and skipped."""
        ...
