"""Counters for the relay router and its driver: every message we drop is counted here."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class RelayCounters:
    rpcs_received: int = 0
    rpcs_malformed: int = 0
    rpcs_from_graylisted: int = 0
    messages_received: int = 0
    duplicates: int = 0
    unsubscribed_topic: int = 0
    """Messages for topics we are not subscribed to (dropped, not forwarded)."""
    signed_rejected: int = 0
    """StrictNoSign violations: from/seqno/signature/key present."""
    oversized_rejected: int = 0
    validator_rejected: int = 0
    validator_ignored: int = 0
    validator_errors: int = 0
    delivered: int = 0
    forwarded: int = 0
    """Copies of messages queued to peers (one per peer per message)."""
    published: int = 0
    iwant_sent: int = 0
    iwant_served: int = 0
    received_after_iwant: int = 0
    """First copies of messages we had asked for by IWANT: deliveries that came by gossip."""
    broken_promises: int = 0
    grafts_sent: int = 0
    prunes_sent: int = 0
    disconnects_requested: int = 0
    send_queue_drops: int = 0
    """Frames dropped because a peer's bounded send queue was full (driver)."""
    delivery_drops: int = 0
    """Messages dropped because the app's delivery channel was full (driver)."""
    stream_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
