"""Range-based set reconciliation over (timestamp, hash) SyncIDs, sans-IO (WAKU-SYNC).

Both sides hold a sorted snapshot of their SyncIDs in the sync window (`ItemIndex`). The
initiator sends one fingerprint range over the window; each side answers every range it
receives: a skip with nothing, an equal fingerprint with a skip, a different one with its
items when it holds at most `threshold` of them, else with `partitions` sub-ranges (item sets
for small ones, fingerprints for the rest); an item set is compared with its own items (the
differences are recorded in both directions) and answered with its own items marked
`reconciled`, unless the peer's set was already so marked. Trailing skips are left out, so
the session ends when a payload holds no ranges. Sub-ranges are cut at new timestamps, or
inside one timestamp at a hash with a single non-zero byte after its leading zeros: nwaku
writes a bound's hash only up to there, so every bound we send comes back as it was.

Bounded: payloads stay within wire.MAX_RANGES and MAX_ITEMS (extra item sets go out as
fingerprints, answered in a later round), a session within `max_rounds` rounds and
`max_differences` differences; a peer that breaks a rule gets a strike (`PeerStrikes`).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from chat.waku.sync.wire import (
    HASH_SIZE,
    MAX_ITEMS,
    MAX_RANGES,
    ZERO_HASH,
    RangeKind,
    SyncId,
    SyncPayload,
    SyncRange,
)

DEFAULT_THRESHOLD = 100
DEFAULT_PARTITIONS = 8


class SyncRefused(Exception):
    """The peer's payload breaks the session's rules; the session ends."""


class TopicMismatch(SyncRefused):
    """The peer syncs other pubsub topics (other shards), or only some content topics."""


@dataclass(frozen=True, slots=True)
class SyncLimits:
    threshold: int = DEFAULT_THRESHOLD
    """Ranges holding at most this many items are answered with the items themselves."""
    partitions: int = DEFAULT_PARTITIONS
    max_rounds: int = 64
    """Payloads one side may receive in a session."""
    max_differences: int = 100_000
    """Differences one session may find (both directions); more ends it."""

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.partitions < 2 or self.max_rounds < 1:
            raise ValueError(f"sync limits out of range: {self}")


def fingerprint_of(hashes: Iterable[bytes]) -> bytes:
    """XOR of the hashes (the spec's range fingerprint)."""
    value = 0
    for digest in hashes:
        value ^= int.from_bytes(digest, "big")
    return value.to_bytes(HASH_SIZE, "big")


class ItemIndex:
    """A sorted snapshot of SyncIDs with prefix XORs: any range's fingerprint in O(log n)."""

    def __init__(self, items: Iterable[SyncId]) -> None:
        self.items: list[SyncId] = sorted(set(items))
        self._prefix = [0]
        for _, digest in self.items:
            self._prefix.append(self._prefix[-1] ^ int.from_bytes(digest, "big"))

    def __len__(self) -> int:
        return len(self.items)

    def span(self, lower: SyncId, upper: SyncId) -> tuple[int, int]:
        """Indexes [start, end) of the items in [lower, upper)."""
        return bisect.bisect_left(self.items, lower), bisect.bisect_left(self.items, upper)

    def fingerprint(self, start: int, end: int) -> bytes:
        return (self._prefix[end] ^ self._prefix[start]).to_bytes(HASH_SIZE, "big")


def split_bound(before: SyncId, after: SyncId) -> SyncId | None:
    """A bound above `before` and at most `after` (consecutive items) that nwaku writes back
    exactly: a zero hash on a new timestamp; on the same one, `after`'s hash cut after its
    first non-zero byte (nwaku writes a bound's hash only up to there). None if there is no
    such bound between the two."""
    if before[0] < after[0]:
        return (after[0], ZERO_HASH)
    digest = after[1]
    first = len(digest) - len(digest.lstrip(b"\0"))
    bound = (after[0], digest[: first + 1] + bytes(HASH_SIZE - first - 1))
    return bound if bound > before else None


class _Builder:
    """An outgoing payload's ranges, with consecutive skips merged and budgets counted."""

    def __init__(self, lowest: SyncId) -> None:
        self.lowest = lowest
        self.ranges: list[SyncRange] = []
        self.items = 0

    def skip(self, upper: SyncId) -> None:
        if self.ranges and self.ranges[-1].kind is RangeKind.SKIP:
            before = self.ranges[-2].upper if len(self.ranges) > 1 else self.lowest
            # A merged skip's bound must still be writable after the range before it.
            if upper[1] == ZERO_HASH or upper[0] == before[0]:
                self.ranges[-1] = SyncRange(upper, RangeKind.SKIP)
                return
        self.ranges.append(SyncRange(upper, RangeKind.SKIP))

    def add(self, sync_range: SyncRange) -> None:
        self.ranges.append(sync_range)
        self.items += len(sync_range.items)

    def room_for(self, ranges: int, items: int = 0) -> bool:
        return len(self.ranges) + ranges <= MAX_RANGES and self.items + items <= MAX_ITEMS

    def finish(self) -> tuple[SyncRange, ...]:
        while self.ranges and self.ranges[-1].kind is RangeKind.SKIP:
            self.ranges.pop()
        return tuple(self.ranges)


@dataclass
class SyncSession:
    """One side of one reconciliation session over `index`."""

    index: ItemIndex
    pubsub_topics: tuple[str, ...]
    """Ours, sorted; the peer must name the same (or none: all)."""
    limits: SyncLimits = field(default_factory=SyncLimits)
    we_have: set[SyncId] = field(default_factory=set)
    """Items the peer lacks (ours to send)."""
    we_need: set[SyncId] = field(default_factory=set)
    """Items we lack (the peer's to send)."""
    rounds: int = 0
    done: bool = False

    def start(self, start_ns: int, end_ns: int) -> SyncPayload:
        """The initiator's first payload: one fingerprint over [start_ns, end_ns)."""
        lower = (start_ns, ZERO_HASH)
        upper = (end_ns, ZERO_HASH)
        if upper <= lower:
            return SyncPayload()
        first, last = self.index.span(lower, upper)
        fingerprint = SyncRange(upper, RangeKind.FINGERPRINT, self.index.fingerprint(first, last))
        return SyncPayload(self.pubsub_topics, (), start_ns, (fingerprint,))

    def same_topics(self, payload: SyncPayload) -> bool:
        """Whether the peer syncs our pubsub topics (naming none: all) on every content topic.
        A payload without ranges names no topics: it always matches."""
        if not payload.ranges:
            return True
        theirs = set(payload.pubsub_topics)
        return (not theirs or theirs == set(self.pubsub_topics)) and not payload.content_topics

    def respond(self, payload: SyncPayload) -> SyncPayload:
        """Our answer to the peer's payload; no ranges means the session is over. Raises
        SyncRefused (TopicMismatch for other pubsub topics or a content topic filter)."""
        if not self.same_topics(payload):
            raise TopicMismatch(
                f"peer syncs pubsub topics {sorted(payload.pubsub_topics)} content topics "
                f"{sorted(payload.content_topics)}, we sync {list(self.pubsub_topics)}"
            )
        self.rounds += 1
        if self.rounds > self.limits.max_rounds:
            raise SyncRefused(f"session took more than {self.limits.max_rounds} rounds")
        out = _Builder(payload.lowest)
        lower = payload.lowest
        for received in payload.ranges:
            if received.kind is RangeKind.SKIP:
                out.skip(received.upper)
            elif received.kind is RangeKind.FINGERPRINT:
                self._answer_fingerprint(out, lower, received)
            else:
                self._answer_items(out, lower, received)
            lower = received.upper
        ranges = out.finish()
        if not ranges:
            self.done = True
            return SyncPayload()
        return SyncPayload(self.pubsub_topics, (), payload.start, ranges)

    def received_final(self) -> None:
        """The peer's payload held no ranges: nothing is left to answer."""
        self.done = True

    def _answer_fingerprint(self, out: _Builder, lower: SyncId, received: SyncRange) -> None:
        start, end = self.index.span(lower, received.upper)
        if self.index.fingerprint(start, end) == received.fingerprint:
            out.skip(received.upper)
            return
        count = end - start
        if count <= self.limits.threshold and out.room_for(1, count):
            out.add(self._item_set(start, end, received.upper, reconciled=False))
            return
        if not out.room_for(2 * self.limits.partitions):
            # No room to split now: hand the range back; the peer splits it in turn.
            out.add(
                SyncRange(received.upper, RangeKind.FINGERPRINT, self.index.fingerprint(start, end))
            )
            return
        pieces = self._partition(lower, received.upper, start, end)
        if len(pieces) == 1 and out.room_for(1, count):
            # Items no writable bound separates (one timestamp, one first hash byte): all of
            # them, or the range would come back unsplit round after round.
            out.add(self._item_set(start, end, received.upper, reconciled=False))
            return
        for sub_lower, sub_upper in pieces:
            sub_start, sub_end = self.index.span(sub_lower, sub_upper)
            sub_count = sub_end - sub_start
            if sub_count <= self.limits.threshold and out.room_for(1, sub_count):
                out.add(self._item_set(sub_start, sub_end, sub_upper, reconciled=False))
            else:
                fingerprint = self.index.fingerprint(sub_start, sub_end)
                out.add(SyncRange(sub_upper, RangeKind.FINGERPRINT, fingerprint))

    def _partition(
        self, lower: SyncId, upper: SyncId, start: int, end: int
    ) -> list[tuple[SyncId, SyncId]]:
        """[lower, upper) cut into about `partitions` pieces of equal item count, at bounds the
        wire can write (a bound with a hash needs the previous bound's timestamp)."""
        items = self.index.items
        count = end - start
        bounds: list[SyncId] = []
        previous = lower
        for part in range(1, self.limits.partitions):
            cut = start + count * part // self.limits.partitions
            if cut <= start:
                continue
            bound = split_bound(items[cut - 1], items[cut])
            if bound is None or bound <= previous:
                continue
            if bound[1] != ZERO_HASH and bound[0] != previous[0]:
                bounds.append((bound[0], ZERO_HASH))
            bounds.append(bound)
            previous = bound
        bounds.append(upper)
        pieces: list[tuple[SyncId, SyncId]] = []
        piece_lower = lower
        for bound in bounds:
            pieces.append((piece_lower, bound))
            piece_lower = bound
        return pieces

    def _item_set(self, start: int, end: int, upper: SyncId, *, reconciled: bool) -> SyncRange:
        return SyncRange(
            upper,
            RangeKind.ITEM_SET,
            items=tuple(self.index.items[start:end]),
            reconciled=reconciled,
        )

    def _answer_items(self, out: _Builder, lower: SyncId, received: SyncRange) -> None:
        start, end = self.index.span(lower, received.upper)
        ours = set(self.index.items[start:end])
        theirs = set(received.items)
        self.we_have |= ours - theirs
        self.we_need |= theirs - ours
        if len(self.we_have) + len(self.we_need) > self.limits.max_differences:
            raise SyncRefused(f"more than {self.limits.max_differences} differences")
        if received.reconciled:
            out.skip(received.upper)
        elif out.room_for(1, end - start):
            out.add(self._item_set(start, end, received.upper, reconciled=True))
        else:
            # Over the payload's item budget: our side of the range goes out as a fingerprint.
            out.add(
                SyncRange(received.upper, RangeKind.FINGERPRINT, self.index.fingerprint(start, end))
            )


class PeerStrikes:
    """Peers that broke the sync rules (malformed payloads, messages for another shard or not
    asked for): after `limit` strikes within `window` seconds a peer is refused for `ban`
    seconds. Injected time; bounded to `max_peers` entries."""

    def __init__(
        self, limit: int = 3, window: float = 600.0, ban: float = 600.0, max_peers: int = 1024
    ) -> None:
        self.limit = limit
        self.window = window
        self.ban = ban
        self.max_peers = max_peers
        self._strikes: dict[Hashable, list[float]] = {}
        self._banned: dict[Hashable, float] = {}
        self.total = 0

    def strike(self, peer: Hashable, now: float) -> None:
        self.total += 1
        recent = [t for t in self._strikes.get(peer, []) if now - t < self.window]
        recent.append(now)
        self._strikes[peer] = recent
        if len(recent) >= self.limit:
            self._banned[peer] = now + self.ban
            del self._strikes[peer]
        for table in (self._strikes, self._banned):
            while len(table) > self.max_peers:
                del table[next(iter(table))]

    def banned(self, peer: Hashable, now: float) -> bool:
        until = self._banned.get(peer)
        if until is None:
            return False
        if now >= until:
            del self._banned[peer]
            return False
        return True
