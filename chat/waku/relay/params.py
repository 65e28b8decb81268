"""Gossipsub and peer-score parameters, defaulting to Waku relay's (nwaku GossipsubParameters).

The values and where they come from are listed in docs/relay.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE

RPC_FRAME_OVERHEAD = 16 * 1024
"""Room for the topic, protobuf tags and piggybacked control around one maximal message."""


@dataclass(frozen=True, slots=True)
class GossipParams:
    d: int = 6
    d_lo: int = 4
    d_hi: int = 8
    d_score: int = 6
    d_out: int = 3
    d_lazy: int = 6
    heartbeat_interval: float = 1.0
    history_length: int = 6
    history_gossip: int = 3
    gossip_factor: float = 0.25
    fanout_ttl: float = 60.0
    flood_publish: bool = True
    prune_backoff: float = 60.0
    unsubscribe_backoff: float = 5.0
    seen_ttl: float = 120.0
    opportunistic_graft_ticks: int = 60
    opportunistic_graft_peers: int = 2
    gossip_retransmission: int = 3
    """How often one peer may fetch the same message by IWANT."""
    max_ihave_length: int = 5000
    """Message ids we ask for by IWANT per peer per heartbeat."""
    max_ihave_messages: int = 10
    """IHAVE control messages we act on per peer per heartbeat."""
    iwant_followup_time: float = 3.0
    """A peer that advertised a message must deliver it within this after our IWANT."""
    max_idontwant_ids: int = 5000
    """IDONTWANT ids remembered per peer (older ones are forgotten first)."""
    idontwant_ttl: float = 3.0
    max_topics_per_peer: int = 256
    max_topic_length: int = 256
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_ids_per_control_entry: int = 1024
    max_seen_entries: int = 500_000

    @property
    def max_rpc_frame_size(self) -> int:
        return self.max_message_size + RPC_FRAME_OVERHEAD


@dataclass(frozen=True, slots=True)
class TopicScoreParams:
    topic_weight: float = 1.0
    time_in_mesh_weight: float = 0.01
    time_in_mesh_quantum: float = 1.0
    time_in_mesh_cap: float = 10.0
    first_message_deliveries_weight: float = 1.0
    first_message_deliveries_decay: float = 0.5
    first_message_deliveries_cap: float = 10.0
    invalid_message_deliveries_weight: float = -100.0
    invalid_message_deliveries_decay: float = 0.5
    # meshMessageDeliveries (P3) and meshFailurePenalty (P3b) are disabled on Waku (weight 0).


@dataclass(frozen=True, slots=True)
class ScoreParams:
    topic: TopicScoreParams = field(default_factory=TopicScoreParams)
    topic_score_cap: float = 0.0
    """0 means uncapped."""
    app_specific_weight: float = 0.0
    ip_colocation_factor_weight: float = -50.0
    ip_colocation_factor_threshold: int = 5
    ip_colocation_whitelist: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    """Addresses never counted for colocation: local test networks put every peer on loopback."""
    behaviour_penalty_weight: float = -10.0
    behaviour_penalty_threshold: float = 0.0
    behaviour_penalty_decay: float = 0.986
    decay_interval: float = 12.0
    decay_to_zero: float = 0.01
    retain_score: float = 600.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    gossip: float = -100.0
    publish: float = -1000.0
    graylist: float = -10000.0
    accept_px: float = 100.0
    opportunistic_graft: float = 0.0
    disconnect_graylisted: bool = True
