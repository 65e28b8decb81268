"""Facts about the message path that only observers see (telemetry's recorder): how a
message reached us, how many peers a publish went to, store answers, gaps found. They go to
`EventFanOut.observe_only`, never to subscribers: the faces and the API do not see them.

Each is emitted just before the event it explains (a `ReceivedVia` before the
`MessageAdded` of that message), so an observer can join them without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from chat import events as ev


@dataclass(frozen=True, slots=True)
class ReceivedVia(ev.Event):
    """A received message's path: relay, filter, store, or sds (released after waiting for
    an earlier message that never came)."""

    kind: ClassVar[str] = "received_via"
    message_id: str
    via: str


@dataclass(frozen=True, slots=True)
class Published(ev.Event):
    """An outgoing message left: by relay (`peers`: relay peers it was sent to) or by light
    push (`peers`: relay peers the service node said it reached)."""

    kind: ClassVar[str] = "published"
    message_id: str
    path: str
    peers: int


@dataclass(frozen=True, slots=True)
class StoreAnswered(ev.Event):
    """One store query to one store node: answered, or failed (`code`: timeout, refused,
    protocol, other)."""

    kind: ClassVar[str] = "store_answered"
    ok: bool
    code: str = "other"


@dataclass(frozen=True, slots=True)
class GapFound(ev.Event):
    """A received frame names earlier messages of the chat we do not hold (SDS)."""

    kind: ClassVar[str] = "gap_found"
    chat_id: str
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TelemetryFigures:
    """What a heartbeat reads from the node (totals since start; the hook takes deltas)."""

    mode: str = "relay"
    filter_subs: int = 0
    """Filter subscriptions held now (content topics times service nodes), light mode."""
    dial_failures: dict[str, int] = field(default_factory=dict)
    """Failed dials since start, by cause (chat.waku.peer_manager.DIAL_FAILURE_CAUSES)."""
