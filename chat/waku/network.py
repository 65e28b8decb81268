"""The network a node joins: chinwag's default cluster and shards, and the settings a node
or client uses once flags, fleet file and config file are merged (chat/fleet.py merges them).

They live in the node stack, which imports nothing from the rest of `chat/`."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CLUSTER_ID = 42
"""chinwag's own network. 0-15 are reserved by Waku, 1 is The Waku Network, 16 is Status."""
DEFAULT_SHARDS = (0, 1)
"""Shard 0: contact requests, 1:1 and private groups. Shard 1: community join requests."""


@dataclass(frozen=True)
class NetworkSettings:
    """What a node or client should use after flags, fleet and config are merged."""

    cluster_id: int
    shards: tuple[int, ...]
    peers: tuple[str, ...]
    """Every peer to keep connected: fleet bootstrap and service nodes, then `--peer`s."""
    store_peers: tuple[str, ...] = ()
    filter_peers: tuple[str, ...] = ()
    lightpush_peers: tuple[str, ...] = ()
    fleet_name: str = ""

    @property
    def lan_only(self) -> bool:
        """No peer is known: only LAN discovery (mDNS) can find any."""
        return not self.peers
