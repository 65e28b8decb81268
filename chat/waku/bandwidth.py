"""The bandwidth meter, sans-IO: bytes in and out per protocol and per relay message kind,
since start and over recent windows.

Counting is two list increments (`count`): no clock, no allocation, no lookup beyond the
index the caller already holds. Time enters only through `roll(now)`, which closes the
current bucket into a ring of fixed-width buckets (10 s, one hour kept): bytes counted since
the last roll belong to the bucket being closed, so a late roll smears them over one bucket
and never loses them. The node rolls once per bucket (bandwidth_taps.py) and every reader
rolls before it reads. Memory is bounded by the ring: buckets x channels integers.

Channels are protocols (by the libp2p protocol id of the stream), relay message kinds (gossip
control, subscriptions, and published messages by what they carry, as the application's
classifier says: `MessageKinds`), and the wire (every byte of a connection after its
upgrade, and mDNS packets, so Noise and yamux/mplex overhead is `wire - sum(protocols)`).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

IN: Final = 0
OUT: Final = 1

PROTOCOLS: Final = (
    "relay",
    "store",
    "filter",
    "lightpush",
    "metadata",
    "identify",
    "discovery",
    "ping",
    "other",
)
"""Protocol names, in report order; `other` holds unknown ids and streams that never agreed
on a protocol (their multistream negotiation)."""

PROTOCOL_PREFIXES: Final = (
    ("/vac/waku/relay/", "relay"),
    ("/vac/waku/store", "store"),
    ("/vac/waku/filter", "filter"),
    ("/vac/waku/lightpush", "lightpush"),
    ("/vac/waku/metadata", "metadata"),
    ("/ipfs/id/", "identify"),
    ("/rendezvous/", "discovery"),
    ("/vac/waku/peer-exchange", "discovery"),
    ("/ipfs/ping/", "ping"),
)

KINDS: Final = (
    "control",
    "subscriptions",
    "chat",
    "sync",
    "contact_request",
    "join_request",
    "message",
)
"""Relay traffic by what it carries: gossip control (IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT),
subscription changes, and published messages: chat messages, receipts and SDS syncs,
contact requests, join requests, and `message` for a content topic no classifier named."""

PUBLISHED_KINDS: Final = KINDS[2:]

WIRE: Final = "wire"

_PROTOCOL_BASE = 0
_KIND_BASE = len(PROTOCOLS)
_WIRE_CHANNEL = _KIND_BASE + len(KINDS)
CHANNELS: Final = _WIRE_CHANNEL + 1
KIND_SLOT_BASE: Final = _KIND_BASE * 2
"""Slot of the first kind, inbound; kind k, direction d is at KIND_SLOT_BASE + 2k + d."""
SLOTS: Final = CHANNELS * 2

BUCKET_SECONDS: Final = 10.0
BUCKETS: Final = 360
"""One hour of 10-second buckets."""
WINDOWS: Final = (("minute", 60.0), ("hour", 3600.0))
MAX_CLASSIFIED_TOPICS: Final = 100_000
"""Content topics the classifier keeps (one per conversation and request inbox)."""


def protocol_slot(protocol_id: str | None, direction: int) -> int:
    """The counter slot for a libp2p protocol id (None: not negotiated yet, or never)."""
    return (_PROTOCOL_BASE + protocol_index(protocol_id)) * 2 + direction


def protocol_index(protocol_id: str | None) -> int:
    if protocol_id is not None:
        for prefix, name in PROTOCOL_PREFIXES:
            if protocol_id.startswith(prefix):
                return PROTOCOLS.index(name)
    return PROTOCOLS.index("other")


def named_slot(protocol: str, direction: int) -> int:
    """The slot of a protocol by its name (mDNS is UDP, not a libp2p stream)."""
    return (_PROTOCOL_BASE + PROTOCOLS.index(protocol)) * 2 + direction


def kind_slot(kind: str, direction: int) -> int:
    return (_KIND_BASE + KINDS.index(kind)) * 2 + direction


def wire_slot(direction: int) -> int:
    return _WIRE_CHANNEL * 2 + direction


class UnknownKind(ValueError):
    """A classifier named a kind the meter does not count."""


class MessageKinds:
    """What a published relay message is, by its content topic, as the application says.

    The application registers its topics (a conversation's content topic carries chat
    messages; a contact-request inbox carries contact requests) and, around a publish call
    that sends something else on such a topic (an SDS sync), names that kind for the call:
    relay queues a publish's frames before `publish` returns. Inbound, what a message turns
    out to be once opened can move its bytes (`BandwidthMeter.relabel`).
    """

    def __init__(self, max_topics: int = MAX_CLASSIFIED_TOPICS) -> None:
        self._topics: dict[bytes, int] = {}
        """Keyed by the topic's UTF-8 bytes, as relay frames carry it."""
        self._max_topics = max_topics
        self._sending: int | None = None
        self.default = KINDS.index("message")

    def set_topic(self, content_topic: str, kind: str) -> None:
        if kind not in PUBLISHED_KINDS:
            raise UnknownKind(f"{kind!r} is not one of {', '.join(PUBLISHED_KINDS)}")
        key = content_topic.encode()
        if key not in self._topics and len(self._topics) >= self._max_topics:
            return  # bounded: later topics count as `message`
        self._topics[key] = KINDS.index(kind)

    def forget_topic(self, content_topic: str) -> None:
        self._topics.pop(content_topic.encode(), None)

    @contextlib.contextmanager
    def sending(self, kind: str) -> Iterator[None]:
        """Frames of messages published inside the block count as `kind` (synchronous
        publish calls only: do not await inside)."""
        if kind not in PUBLISHED_KINDS:
            raise UnknownKind(f"{kind!r} is not one of {', '.join(PUBLISHED_KINDS)}")
        previous = self._sending
        self._sending = KINDS.index(kind)
        try:
            yield
        finally:
            self._sending = previous

    def kind_index(self, content_topic: bytes | str | None, outbound: bool) -> int:
        if outbound and self._sending is not None:
            return self._sending
        if content_topic is None:
            return self.default
        key = content_topic.encode() if isinstance(content_topic, str) else content_topic
        return self._topics.get(key, self.default)


@dataclass(frozen=True, slots=True)
class Rates:
    """Bytes per second over a window (the part of it the meter has run, if shorter)."""

    window: str
    seconds: float
    in_per_s: float
    out_per_s: float


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    bytes_in: int
    bytes_out: int
    rates: tuple[Rates, ...]
    messages_in: int = 0
    messages_out: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    uptime: float
    bucket_seconds: float
    protocols: tuple[Line, ...]
    kinds: tuple[Line, ...]
    wire: Line
    transport: Line
    """Connection bytes no stream carried: Noise and muxer framing (wire minus protocols,
    never below zero)."""


class BandwidthMeter:
    def __init__(
        self,
        started: float,
        *,
        bucket_seconds: float = BUCKET_SECONDS,
        buckets: int = BUCKETS,
    ) -> None:
        if bucket_seconds <= 0 or buckets < 1:
            raise ValueError("a meter needs a positive bucket width and at least one bucket")
        self.kinds = MessageKinds()
        self.bucket_seconds = bucket_seconds
        self.started = started
        self.totals = [0] * SLOTS
        self.messages = [0] * SLOTS
        """Published messages and control/subscription RPCs counted per kind slot."""
        self._current = [0] * SLOTS
        self._ring: deque[list[int]] = deque(maxlen=buckets)
        self._bucket_end = started + bucket_seconds

    # ---- counting (the hot path) ---------------------------------------------------------

    def count(self, slot: int, nbytes: int) -> None:
        self.totals[slot] += nbytes
        self._current[slot] += nbytes

    def count_message(self, slot: int, nbytes: int) -> None:
        self.totals[slot] += nbytes
        self._current[slot] += nbytes
        self.messages[slot] += 1

    def move(self, source: int, target: int, nbytes: int) -> None:
        """Move bytes already counted from one slot to another (never below zero)."""
        if nbytes <= 0 or source == target:
            return
        moved = min(nbytes, self.totals[source])
        self.totals[source] -= moved
        self.totals[target] += moved
        recent = min(moved, self._current[source])
        self._current[source] -= recent
        self._current[target] += recent

    def relabel(self, direction: int, from_kind: str, to_kind: str, nbytes: int) -> None:
        """Move one message's bytes between kinds once the application knows what it was
        (an opened frame that was an SDS sync, not a chat message)."""
        source = kind_slot(from_kind, direction)
        target = kind_slot(to_kind, direction)
        if source == target:
            return
        self.move(source, target, nbytes)
        if self.messages[source]:
            self.messages[source] -= 1
            self.messages[target] += 1

    # ---- time ----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Restart the windows at `now` (the node starts); totals are kept."""
        self.started = now
        self._ring.clear()
        self._current = [0] * SLOTS
        self._bucket_end = now + self.bucket_seconds

    def roll(self, now: float) -> None:
        """Close every bucket that ended by `now` (empty ones for a silent gap)."""
        if now < self._bucket_end:
            return
        self._ring.append(self._current)
        self._current = [0] * SLOTS
        gaps = int((now - self._bucket_end) // self.bucket_seconds)
        maxlen = self._ring.maxlen or 1
        for _ in range(min(gaps, maxlen)):
            self._ring.append([0] * SLOTS)
        self._bucket_end += (gaps + 1) * self.bucket_seconds

    # ---- reading -------------------------------------------------------------------------

    def window_sums(self, now: float, seconds: float) -> tuple[list[int], float]:
        """Bytes per slot over the last `seconds` (whole buckets plus the open one) and the
        time that covers (shorter while the meter is young)."""
        self.roll(now)
        whole = max(0, round(seconds / self.bucket_seconds) - 1)
        sums = list(self._current)
        taken = 0
        for bucket in reversed(self._ring):
            if taken >= whole:
                break
            for slot, value in enumerate(bucket):
                if value:
                    sums[slot] += value
            taken += 1
        open_part = self.bucket_seconds - (self._bucket_end - now)
        covered = min(seconds, taken * self.bucket_seconds + open_part, now - self.started)
        return sums, max(covered, 1e-9)

    def snapshot(self, now: float) -> Snapshot:
        windows = [(name, *self.window_sums(now, seconds)) for name, seconds in WINDOWS]

        def line(name: str, channel: int) -> Line:
            slot_in, slot_out = channel * 2 + IN, channel * 2 + OUT
            rates = tuple(
                Rates(window, covered, sums[slot_in] / covered, sums[slot_out] / covered)
                for window, sums, covered in windows
            )
            return Line(
                name,
                self.totals[slot_in],
                self.totals[slot_out],
                rates,
                self.messages[slot_in],
                self.messages[slot_out],
            )

        protocols = tuple(line(name, _PROTOCOL_BASE + i) for i, name in enumerate(PROTOCOLS))
        kinds = tuple(line(name, _KIND_BASE + i) for i, name in enumerate(KINDS))
        wire = line(WIRE, _WIRE_CHANNEL)
        transport = _overhead(wire, protocols)
        return Snapshot(now - self.started, self.bucket_seconds, protocols, kinds, wire, transport)


def _overhead(wire: Line, protocols: tuple[Line, ...]) -> Line:
    def minus(total: float, parts: list[float]) -> float:
        return max(0.0, total - sum(parts))

    rates = tuple(
        Rates(
            rate.window,
            rate.seconds,
            minus(rate.in_per_s, [p.rates[i].in_per_s for p in protocols]),
            minus(rate.out_per_s, [p.rates[i].out_per_s for p in protocols]),
        )
        for i, rate in enumerate(wire.rates)
    )
    return Line(
        "transport",
        int(minus(wire.bytes_in, [p.bytes_in for p in protocols])),
        int(minus(wire.bytes_out, [p.bytes_out for p in protocols])),
        rates,
    )
