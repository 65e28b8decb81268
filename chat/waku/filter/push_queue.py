"""What a filter service node holds for its subscribers' pushes, bounded in bytes (sans-IO).

Each subscriber has a queue of frames waiting to be pushed and at most one frame being
written. A subscriber that stops reading stops taking frames, so its queue would grow with
every matching message: 1,000 subscribers × 64 frames × 150 KiB is 9.6 GB. The bounds:

- per subscriber, `per_subscriber_bytes` (and `per_subscriber_frames`) queued: a new frame
  beyond that drops that subscriber's oldest (`queue_full`);
- in all, `total_bytes` held, queued or being written. A frame is the same bytes for every
  subscriber it is pushed to (the server encodes each message once), so it is counted once,
  until the last of its subscribers has written or dropped it. A new frame beyond that drops
  the oldest frames of the subscriber that has the most queued (`memory_full`); if that is
  not enough (the rest is being written), the new frame is dropped for this subscriber.

Every drop is counted by reason. A subscriber that missed pushes catches up from store, as
filter clients do (they check store for what a push could have missed).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB

QUEUE_FULL = "queue_full"
MEMORY_FULL = "memory_full"


@dataclass(frozen=True, slots=True)
class PushLimits:
    per_subscriber_bytes: int = 1 * MIB
    per_subscriber_frames: int = 64
    total_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        for name in ("per_subscriber_bytes", "per_subscriber_frames", "total_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")


@dataclass(slots=True, eq=False)
class _Frame:
    data: bytes
    holders: int = 0
    """Queues holding it, waiting or being written."""

    @property
    def size(self) -> int:
        return len(self.data)


class SubscriberQueue:
    """One subscriber's frames: `take` the next to write, `done` once it is written (or
    failed), `close` when the subscription ends."""

    def __init__(self, owner: PushQueues, peer: str) -> None:
        self.owner = owner
        self.peer = peer
        self._waiting: deque[_Frame] = deque()
        self.queued_bytes = 0
        self._writing: _Frame | None = None
        self.closed = False

    @property
    def queued_frames(self) -> int:
        return len(self._waiting)

    def take(self) -> bytes | None:
        """The oldest waiting frame, now being written (None if none waits, or one is
        being written already)."""
        if self._writing is not None or not self._waiting:
            return None
        frame = self._waiting.popleft()
        self.queued_bytes -= frame.size
        self._writing = frame
        return frame.data

    def done(self) -> None:
        """The frame being written is written, or given up on."""
        frame, self._writing = self._writing, None
        if frame is not None:
            self.owner._release(frame)

    def close(self) -> None:
        """The subscription ended: its waiting frames are let go (not counted as drops); the
        one being written is let go by its `done`."""
        self.closed = True
        while self._waiting:
            self.owner._release(self._drop_oldest())
        self.owner._queues.discard(self)

    def _drop_oldest(self) -> _Frame:
        frame = self._waiting.popleft()
        self.queued_bytes -= frame.size
        return frame

    def _append(self, frame: _Frame) -> None:
        self._waiting.append(frame)
        self.queued_bytes += frame.size


class PushQueues:
    def __init__(self, limits: PushLimits | None = None) -> None:
        self.limits = limits or PushLimits()
        self.dropped: Counter[str] = Counter()
        self.total_bytes = 0
        """Bytes held: distinct frames waiting or being written."""
        self._queues: set[SubscriberQueue] = set()

    def open(self, peer: str) -> SubscriberQueue:
        queue = SubscriberQueue(self, peer)
        self._queues.add(queue)
        return queue

    def offer(self, queues: Iterable[SubscriberQueue], data: bytes) -> int:
        """Queue one frame for each of `queues`; how many took it (the others dropped it)."""
        frame = _Frame(data)
        taken = 0
        for queue in queues:
            if not queue.closed and self._enqueue(queue, frame):
                taken += 1
        return taken

    def _enqueue(self, queue: SubscriberQueue, frame: _Frame) -> bool:
        limits = self.limits
        if frame.size > limits.per_subscriber_bytes:
            self.dropped[QUEUE_FULL] += 1
            return False
        while queue._waiting and (
            queue.queued_bytes + frame.size > limits.per_subscriber_bytes
            or queue.queued_frames >= limits.per_subscriber_frames
        ):
            self._drop(queue, QUEUE_FULL)
        if frame.holders == 0:  # new bytes to hold
            while self.total_bytes + frame.size > limits.total_bytes:
                heaviest = max(self._queues, key=lambda q: q.queued_bytes, default=None)
                if heaviest is None or not heaviest._waiting:
                    self.dropped[MEMORY_FULL] += 1
                    return False
                self._drop(heaviest, MEMORY_FULL)
            self.total_bytes += frame.size
        frame.holders += 1
        queue._append(frame)
        return True

    def _drop(self, queue: SubscriberQueue, reason: str) -> None:
        self.dropped[reason] += 1
        self._release(queue._drop_oldest())

    def _release(self, frame: _Frame) -> None:
        frame.holders -= 1
        if frame.holders == 0:
            self.total_bytes -= frame.size
