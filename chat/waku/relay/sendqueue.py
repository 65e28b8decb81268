"""A bounded per-peer send queue: never blocks the router, refuses (and lets the caller count)
what does not fit, and hands the writer everything waiting as one write. A local publisher
with many messages may wait for room first (`wait_for_room`), so it goes at the pace the peer
reads instead of overflowing the queue."""

from __future__ import annotations

from collections import deque

import trio


class SendQueue:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self._wakeup = trio.Event()
        self._drained: trio.Event | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, frame: bytes) -> bool:
        """Queue a frame; False when it does not fit (the caller counts the drop)."""
        if (
            self.closed
            or len(self._frames) >= self.max_frames
            or self._bytes + len(frame) > self.max_bytes
        ):
            return False
        self._frames.append(frame)
        self._bytes += len(frame)
        self._wakeup.set()
        return True

    async def get_batch(self, max_bytes: int) -> bytes:
        """Waits for at least one frame; returns whole frames joined, up to `max_bytes`
        (or one frame if it alone is larger)."""
        while not self._frames:
            if self.closed:
                raise trio.EndOfChannel
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        batch = [self._frames.popleft()]
        size = len(batch[0])
        while self._frames and size + len(self._frames[0]) <= max_bytes:
            frame = self._frames.popleft()
            batch.append(frame)
            size += len(frame)
        self._bytes -= size
        if self._drained is not None:
            self._drained.set()
            self._drained = None
        return batch[0] if len(batch) == 1 else b"".join(batch)

    def has_room(self, fraction: float = 0.5) -> bool:
        """At most `fraction` full, in frames and in bytes (or closed: nothing to wait for)."""
        return self.closed or (
            len(self._frames) <= self.max_frames * fraction
            and self._bytes <= self.max_bytes * fraction
        )

    async def wait_for_room(self, fraction: float = 0.5) -> None:
        """Waits until `has_room(fraction)`; returns at once if it already holds."""
        while not self.has_room(fraction):
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()

    def close(self) -> None:
        self.closed = True
        self._frames.clear()
        self._bytes = 0
        self._wakeup.set()
        if self._drained is not None:
            self._drained.set()
            self._drained = None
