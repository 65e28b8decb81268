"""Scalable Data Sync (SDS): end-to-end acknowledgements and causal order for a channel.

Wire format: the spec / @waku/sds field numbering (chat/proto/sds.proto), so @waku/sds can
serve as a conformance oracle. Parameters are ours: a short causal history and a small
rolling bloom filter keep one message's reliability overhead under 1 KB, against ~19 KB with
the JS defaults (JS_DEFAULTS reproduces those for interop checks).

SdsChannel is sans-IO: frames and `now_ms` in, frames and events out. It never sends, stores
or sleeps; the conversation pipeline persists `export_state()` and moves the bytes.

Rules (from the spec, with our choices marked):
- send: lamport = max(now_ms, lamport + 1), saturating at 2^64 - 1 (ours); history = last
  `history_length` ids of the local log, each with its retrieval hint (the Waku hash);
  bloom = the current filter.
- own messages join the bloom and the log when the transport reports success (`mark_sent`).
- receive: drop our own frames and duplicates; refuse a lamport more than
  `max_lamport_skew_ms` ahead of now (ours); review acknowledgements (id in a received
  history = acknowledged; a bloom hit counts once per incoming message id and only from a
  frame newer (higher lamport) than ours (ours), `possible_ack_threshold` hits =
  acknowledged); a content message is delivered when every id of its history is delivered
  or given up, else it waits in the incoming buffer and its missing ids are reported with
  their hints.
- giving up (ours): a frame that waited `older_than_ms` is delivered anyway, with the waiting
  frames it depends on, in lamport order; its missing ids are reported `Lost` and count as
  satisfied from then on, so one lost message cannot stall the channel.
- sync messages (no content) carry history and bloom only; they are never logged or buffered.
- ephemeral messages (no lamport) are delivered at once and never logged.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chat.proto import sds_pb2
from chat.reliability.bloom import (
    JS_DEFAULT_CAPACITY,
    JS_DEFAULT_ERROR_RATE,
    BloomFilter,
    RollingBloomFilter,
)
from chat.waku.protowire import optional, parse

MAX_FRAME_SIZE = 150 * 1024
MAX_ID_LENGTH = 256
MAX_HISTORY_ENTRIES = 500
MAX_LAMPORT = 2**64 - 1  # the wire field is a uint64


class SdsError(ValueError):
    """A frame that cannot be decoded or is not acceptable."""


class FrameKind(Enum):
    CONTENT = "content"
    SYNC = "sync"
    EPHEMERAL = "ephemeral"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    message_id: str
    retrieval_hint: bytes = b""


@dataclass(frozen=True, slots=True)
class SdsFrame:
    sender_id: str
    message_id: str
    channel_id: str
    lamport: int | None
    causal_history: tuple[HistoryEntry, ...] = ()
    bloom: bytes = b""
    content: bytes = b""

    @property
    def kind(self) -> FrameKind:
        if self.lamport is None:
            return FrameKind.EPHEMERAL
        return FrameKind.CONTENT if self.content else FrameKind.SYNC

    def encode(self) -> bytes:
        pb = sds_pb2.SdsMessage(
            sender_id=self.sender_id, message_id=self.message_id, channel_id=self.channel_id
        )
        if self.lamport is not None:
            pb.lamport_timestamp = self.lamport
        for entry in self.causal_history:
            item = pb.causal_history.add(message_id=entry.message_id)
            if entry.retrieval_hint:
                item.retrieval_hint = entry.retrieval_hint
        if self.bloom:
            pb.bloom_filter = self.bloom
        if self.content:
            pb.content = self.content
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_FRAME_SIZE) -> SdsFrame:
        if len(data) > max_size:
            raise SdsError(f"SDS frame of {len(data)} bytes is over the {max_size}-byte limit")
        pb = parse(sds_pb2.SdsMessage, data, SdsError, "an SDS frame")
        if not pb.message_id or len(pb.message_id) > MAX_ID_LENGTH:
            raise SdsError("SDS frame has an empty or oversized message id")
        if len(pb.sender_id) > MAX_ID_LENGTH or len(pb.channel_id) > MAX_ID_LENGTH:
            raise SdsError("SDS frame has an oversized sender or channel id")
        if len(pb.causal_history) > MAX_HISTORY_ENTRIES:
            raise SdsError(f"SDS frame has {len(pb.causal_history)} history entries")
        return cls(
            sender_id=pb.sender_id,
            message_id=pb.message_id,
            channel_id=pb.channel_id,
            lamport=optional(pb, "lamport_timestamp"),
            causal_history=tuple(
                HistoryEntry(e.message_id, e.retrieval_hint) for e in pb.causal_history
            ),
            bloom=pb.bloom_filter,
            content=pb.content,
        )


def content_message_id(content: bytes) -> str:
    """@waku/sds's id: lowercase hex SHA-256 of the content (the app keeps contents unique)."""
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True, slots=True)
class SdsParams:
    # 2 entries of history and a 400-id, 1 % bloom (504 bytes) keep a frame's overhead under
    # 1 KB even with 64-character ids; the JS defaults cost ~19 KB.
    history_length: int = 2
    bloom_capacity: int = 400
    bloom_error_rate: float = 0.01
    possible_ack_threshold: int = 2
    sync_history_length: int = 16
    """Sync frames name more ids than content frames (ours): a sync exists to acknowledge,
    and an id in a history is a certain acknowledgement where a bloom hit is only a likely
    one. A sync names first the messages delivered since the last sync named them, so every
    delivered message is named at least once. Sync frames carry no message, so this costs
    no message overhead."""
    acknowledge_by_bloom: bool = True
    """Whether enough bloom hits count as an acknowledgement (the spec's rule). A bloom
    filter has false positives and also holds ids still waiting for their dependencies, so
    chinwag's messenger turns this off: bloom hits are then reported as
    PossiblyAcknowledged only, and "delivered" rests on a history entry."""
    max_unannounced: int = 1000
    """Delivered ids remembered until a sync names them."""
    log_length: int = 5000
    """How many delivered ids we remember with their lamport and hint (history, deps)."""
    forgotten_ids_length: int = 5000
    """How many ids trimmed from the log we still recognise as delivered (duplicates, deps)."""
    lost_ids_length: int = 1000
    """How many given-up ids we keep treating as satisfied dependencies."""
    max_lamport_skew_ms: int = 24 * 3600 * 1000
    """Frames whose lamport is further ahead of our clock are refused: one huge lamport
    would otherwise drag our clock to the end of the uint64 range for good."""


JS_DEFAULTS = SdsParams(
    history_length=200,
    bloom_capacity=JS_DEFAULT_CAPACITY,
    bloom_error_rate=JS_DEFAULT_ERROR_RATE,
    possible_ack_threshold=2,
    sync_history_length=200,
)


# Events the channel reports to the conversation pipeline.
@dataclass(frozen=True, slots=True)
class Delivered:
    frame: SdsFrame


@dataclass(frozen=True, slots=True)
class Acknowledged:
    message_id: str
    by: str
    """'history' (named in a causal history) or 'bloom' (enough bloom hits)."""


@dataclass(frozen=True, slots=True)
class PossiblyAcknowledged:
    message_id: str
    hits: int


@dataclass(frozen=True, slots=True)
class Missing:
    entries: tuple[HistoryEntry, ...]


@dataclass(frozen=True, slots=True)
class Lost:
    """Dependencies we stopped waiting for: the frames that needed them were delivered
    without them (the UI can say "n earlier messages could not be retrieved")."""

    entries: tuple[HistoryEntry, ...]


SdsEvent = Delivered | Acknowledged | PossiblyAcknowledged | Missing | Lost


@dataclass
class _Outgoing:
    frame: SdsFrame
    bloom_hits: int = 0
    hit_by: set[str] = field(default_factory=set)
    """Incoming message ids that already counted as a bloom hit (each counts once)."""


@dataclass
class _Waiting:
    frame: SdsFrame
    received_ms: int
    retrieval_hint: bytes


@dataclass
class SdsChannel:
    channel_id: str
    own_id: str
    params: SdsParams = field(default_factory=SdsParams)
    lamport: int = 0

    def __post_init__(self) -> None:
        self._bloom = RollingBloomFilter(self.params.bloom_capacity, self.params.bloom_error_rate)
        self._log: list[tuple[int, str]] = []  # sorted (lamport, id), oldest first
        self._logged: dict[str, bytes] = {}  # id -> retrieval hint
        self._forgotten: dict[str, None] = {}  # ids trimmed from the log, oldest first
        self._lost: dict[str, None] = {}  # given-up dependencies, oldest first
        self._outgoing: dict[str, _Outgoing] = {}
        self._incoming: dict[str, _Waiting] = {}
        self._unannounced: dict[str, None] = {}  # delivered, not yet named by our syncs

    # ---- sending -------------------------------------------------------------------------
    def _next_lamport(self, now_ms: int) -> int:
        return min(MAX_LAMPORT, max(now_ms, self.lamport + 1))

    def _checked(self, frame: SdsFrame) -> SdsFrame:
        """`frame` if it encodes; the clock moves only for frames that can go out."""
        try:
            frame.encode()
        except ValueError as exc:  # e.g. an id that is not valid UTF-8
            raise SdsError(f"cannot encode SDS frame {frame.message_id!r}: {exc}") from None
        assert frame.lamport is not None
        self.lamport = frame.lamport
        return frame

    def _history(self, length: int | None = None) -> tuple[HistoryEntry, ...]:
        length = self.params.history_length if length is None else length
        newest = self._log[-length:] if length else []
        return tuple(HistoryEntry(mid, self._logged.get(mid, b"")) for _, mid in newest)

    def wrap(self, content: bytes, message_id: str, now_ms: int) -> SdsFrame:
        """A content frame for `content`. Wrapping an id again returns the buffered frame
        unchanged, which is how retries keep the same id, lamport and history."""
        if not content:
            raise SdsError("content messages need content; use make_sync for sync messages")
        if message_id in self._outgoing:
            return self._outgoing[message_id].frame
        frame = self._checked(
            SdsFrame(
                sender_id=self.own_id,
                message_id=message_id,
                channel_id=self.channel_id,
                lamport=self._next_lamport(now_ms),
                causal_history=self._history(),
                bloom=self._bloom.to_bytes(),
                content=content,
            )
        )
        self._outgoing[message_id] = _Outgoing(frame)
        return frame

    def mark_sent(self, message_id: str, retrieval_hint: bytes = b"") -> None:
        """The transport took our frame: it joins our bloom filter and log."""
        out = self._outgoing.get(message_id)
        if out is not None and out.frame.lamport is not None:
            self._log_insert(out.frame.lamport, message_id, retrieval_hint)
        elif retrieval_hint and message_id in self._logged:
            self._logged[message_id] = retrieval_hint  # acknowledged before the transport said

    def make_sync(self, sync_id: str, now_ms: int) -> SdsFrame | None:
        """A sync frame advertising our history and bloom; None while we have nothing to say."""
        if not self._log:
            return None
        length = self.params.sync_history_length
        named = list(self._unannounced)[:length]
        newest = [mid for _, mid in reversed(self._log) if mid not in self._unannounced]
        chosen = named + newest[: max(0, length - len(named))]
        frame = self._checked(
            SdsFrame(
                sender_id=self.own_id,
                message_id=sync_id,
                channel_id=self.channel_id,
                lamport=self._next_lamport(now_ms),
                causal_history=tuple(HistoryEntry(m, self._logged.get(m, b"")) for m in chosen),
                bloom=self._bloom.to_bytes(),
            )
        )
        for mid in named:
            del self._unannounced[mid]
        return frame

    def ephemeral(self, content: bytes, message_id: str) -> SdsFrame:
        return SdsFrame(self.own_id, message_id, self.channel_id, None, content=content)

    def unacknowledged(self) -> list[SdsFrame]:
        return [out.frame for out in self._outgoing.values()]

    def is_acknowledged(self, message_id: str) -> bool:
        return message_id not in self._outgoing

    # ---- receiving -----------------------------------------------------------------------
    def receive(self, frame: SdsFrame, now_ms: int, retrieval_hint: bytes = b"") -> list[SdsEvent]:
        if frame.channel_id != self.channel_id or frame.sender_id == self.own_id:
            return []
        if frame.kind is FrameKind.EPHEMERAL:
            return [Delivered(frame)]
        assert frame.lamport is not None
        if frame.lamport > now_ms + self.params.max_lamport_skew_ms:
            raise SdsError(
                f"SDS frame {frame.message_id!r} has lamport {frame.lamport}, more than "
                f"{self.params.max_lamport_skew_ms} ms ahead of now ({now_ms})"
            )
        events: list[SdsEvent] = self._review_acks(frame)
        if frame.kind is FrameKind.SYNC:
            return events
        if self._is_delivered(frame.message_id) or frame.message_id in self._incoming:
            if self._is_delivered(frame.message_id):  # re-sent: our ack did not get through
                self._remember(self._unannounced, frame.message_id, self.params.max_unannounced)
            return events  # duplicate: acknowledgements reviewed, nothing more
        self._bloom.add(frame.message_id)
        if self._deps_met(frame):
            events += self._deliver([_Waiting(frame, now_ms, retrieval_hint)])
        else:
            self._incoming[frame.message_id] = _Waiting(frame, now_ms, retrieval_hint)
            missing = self.missing()
            if missing:
                events.append(Missing(tuple(missing)))
        return events

    def _review_acks(self, frame: SdsFrame) -> list[SdsEvent]:
        events: list[SdsEvent] = []
        for entry in frame.causal_history:
            out = self._outgoing.pop(entry.message_id, None)
            if out is not None:
                self._acknowledged(out)
                events.append(Acknowledged(entry.message_id, "history"))
        if not frame.bloom or not self._outgoing:
            return events
        try:
            bloom = BloomFilter.from_bytes(
                frame.bloom, self.params.bloom_capacity, self.params.bloom_error_rate
            )
        except ValueError:
            return events  # a peer with other bloom parameters: its history still counts
        assert frame.lamport is not None
        for mid, out in list(self._outgoing.items()):
            # A frame built before our message existed cannot have seen it, and copies of
            # one incoming message are one observation: neither may add up to an ack.
            assert out.frame.lamport is not None
            if frame.lamport <= out.frame.lamport or frame.message_id in out.hit_by:
                continue
            if mid in bloom:
                out.hit_by.add(frame.message_id)
                out.bloom_hits += 1
                if (
                    self.params.acknowledge_by_bloom
                    and out.bloom_hits >= self.params.possible_ack_threshold
                ):
                    del self._outgoing[mid]
                    self._acknowledged(out)
                    events.append(Acknowledged(mid, "bloom"))
                else:
                    events.append(PossiblyAcknowledged(mid, out.bloom_hits))
        return events

    def _acknowledged(self, out: _Outgoing) -> None:
        """A peer has our frame, so it left: it is in our log even if the transport has not
        said so yet (a light push answers after the relay took it), or a frame naming it
        would wait for it."""
        if out.frame.lamport is not None:
            self._log_insert(out.frame.lamport, out.frame.message_id, b"")

    def _is_delivered(self, message_id: str) -> bool:
        return message_id in self._logged or message_id in self._forgotten

    def _satisfied(self, message_id: str) -> bool:
        return self._is_delivered(message_id) or message_id in self._lost

    def _deps_met(self, frame: SdsFrame) -> bool:
        return all(self._satisfied(e.message_id) for e in frame.causal_history)

    def _deliver(self, ready: list[_Waiting]) -> list[SdsEvent]:
        """Deliver `ready` in its order, then every waiting frame that becomes ready."""
        events: list[SdsEvent] = []
        queue = deque(ready)
        while queue:
            current = queue.popleft()
            assert current.frame.lamport is not None
            self.lamport = min(MAX_LAMPORT, max(self.lamport, current.frame.lamport))
            self._log_insert(
                current.frame.lamport, current.frame.message_id, current.retrieval_hint
            )
            if current.frame.content:
                self._remember(
                    self._unannounced, current.frame.message_id, self.params.max_unannounced
                )
            events.append(Delivered(current.frame))
            for mid, waiting in list(self._incoming.items()):
                if self._deps_met(waiting.frame):
                    del self._incoming[mid]
                    queue.append(waiting)
        return events

    def missing(self) -> list[HistoryEntry]:
        """Dependencies of waiting frames that we have never seen, with their hints."""
        seen: dict[str, HistoryEntry] = {}
        for waiting in self._incoming.values():
            for entry in waiting.frame.causal_history:
                if not self._satisfied(entry.message_id) and entry.message_id not in self._incoming:
                    seen.setdefault(entry.message_id, entry)
        return list(seen.values())

    def give_up_waiting(self, now_ms: int, older_than_ms: int) -> list[SdsEvent]:
        """Stop waiting for dependencies that did not come within `older_than_ms`.

        Every frame that waited that long is delivered, together with the waiting frames it
        depends on, in lamport order; the ids none of them could get are reported `Lost`
        and count as satisfied from now on, which releases later frames too. A lost message
        that turns up after all is still delivered.
        """
        stack = [
            mid for mid, w in self._incoming.items() if now_ms - w.received_ms >= older_than_ms
        ]
        released: dict[str, _Waiting] = {}
        while stack:
            mid = stack.pop()
            if mid in released:
                continue
            released[mid] = waiting = self._incoming.pop(mid)
            stack += [
                e.message_id for e in waiting.frame.causal_history if e.message_id in self._incoming
            ]
        order = sorted(released.values(), key=lambda w: (w.frame.lamport, w.frame.message_id))
        lost: dict[str, HistoryEntry] = {}
        for waiting in order:
            for entry in waiting.frame.causal_history:
                if not self._satisfied(entry.message_id) and entry.message_id not in released:
                    lost.setdefault(entry.message_id, entry)
        for mid in lost:
            self._remember(self._lost, mid, self.params.lost_ids_length)
        events: list[SdsEvent] = [Lost(tuple(lost.values()))] if lost else []
        return events + self._deliver(order)

    def waiting(self) -> list[SdsFrame]:
        return [w.frame for w in self._incoming.values()]

    def recent_ids(self, count: int) -> list[str]:
        """The ids of the newest `count` messages of our log (the ones our next frames will
        name in their histories)."""
        return [mid for _, mid in self._log[-count:]] if count > 0 else []

    def assume_delivered(self, message_ids: list[str]) -> list[SdsEvent]:
        """Stop waiting for these messages: we can never have them (ours: a group member
        who joined cannot read what was sent before). They count as satisfied dependencies,
        like given-up ones; the waiting frames that were waiting only for them are delivered
        now, in lamport order."""
        for mid in message_ids[: self.params.lost_ids_length]:
            if not self._is_delivered(mid) and mid not in self._incoming:
                self._remember(self._lost, mid, self.params.lost_ids_length)
        ready = [w for w in self._incoming.values() if self._deps_met(w.frame)]
        ready.sort(key=lambda w: (w.frame.lamport or 0, w.frame.message_id))
        for waiting in ready:
            del self._incoming[waiting.frame.message_id]
        return self._deliver(ready)

    # ---- log -----------------------------------------------------------------------------
    def _log_insert(self, lamport: int, message_id: str, hint: bytes) -> None:
        if self._is_delivered(message_id):
            return
        bisect.insort(self._log, (lamport, message_id))
        self._logged[message_id] = hint
        self._lost.pop(message_id, None)
        self._bloom.add(message_id)
        while len(self._log) > self.params.log_length:
            _, old = self._log.pop(0)
            self._logged.pop(old, None)
            self._remember(self._forgotten, old, self.params.forgotten_ids_length)

    @staticmethod
    def _remember(ids: dict[str, None], message_id: str, limit: int) -> None:
        ids[message_id] = None
        while len(ids) > limit:
            del ids[next(iter(ids))]

    # ---- persistence ---------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Everything needed to resume the channel after a restart, as JSON-safe data."""
        # Version 1 grew optional keys (forgotten, lost, bloom_hit_by); readers of the
        # first layout ignore them and this reader defaults them to empty.
        return {
            "version": 1,
            "lamport": self.lamport,
            "log": [[lam, mid, self._logged[mid].hex()] for lam, mid in self._log],
            "forgotten": list(self._forgotten),
            "lost": list(self._lost),
            "bloom_ids": self._bloom.ids,
            "outgoing": [
                [out.frame.encode().hex(), out.bloom_hits] for out in self._outgoing.values()
            ],
            "bloom_hit_by": {
                mid: sorted(out.hit_by) for mid, out in self._outgoing.items() if out.hit_by
            },
            "unannounced": list(self._unannounced),
            "incoming": [
                [w.frame.encode().hex(), w.received_ms, w.retrieval_hint.hex()]
                for w in self._incoming.values()
            ],
        }

    @classmethod
    def from_state(
        cls, channel_id: str, own_id: str, state: dict[str, Any], params: SdsParams | None = None
    ) -> SdsChannel:
        if state.get("version") != 1:
            raise SdsError(f"unknown SDS state version {state.get('version')!r}")
        lamport = min(MAX_LAMPORT, int(state["lamport"]))
        channel = cls(channel_id, own_id, params or SdsParams(), lamport=lamport)
        channel._bloom = RollingBloomFilter.from_ids(
            list(state["bloom_ids"]), channel.params.bloom_capacity, channel.params.bloom_error_rate
        )
        for lam, mid, hint in state["log"]:
            channel._log.append((int(lam), str(mid)))
            channel._logged[str(mid)] = bytes.fromhex(hint)
        channel._log.sort()
        for mid in state.get("forgotten", []):
            channel._forgotten[str(mid)] = None
        for mid in state.get("lost", []):
            channel._lost[str(mid)] = None
        for mid in state.get("unannounced", []):
            channel._unannounced[str(mid)] = None
        hit_by = state.get("bloom_hit_by", {})
        for frame_hex, hits in state["outgoing"]:
            frame = SdsFrame.decode(bytes.fromhex(frame_hex))
            seen = {str(i) for i in hit_by.get(frame.message_id, [])}
            channel._outgoing[frame.message_id] = _Outgoing(frame, int(hits), seen)
        for frame_hex, received_ms, hint in state["incoming"]:
            frame = SdsFrame.decode(bytes.fromhex(frame_hex))
            channel._incoming[frame.message_id] = _Waiting(
                frame, int(received_ms), bytes.fromhex(hint)
            )
        return channel
