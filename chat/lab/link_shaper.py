"""When a chunk of a TCP byte stream may leave a shaped link: latency, jitter and a bandwidth
cap, as a pure schedule with the time passed in (the fault proxy moves the bytes).

A TCP link cannot reorder or lose bytes, so jitter only stretches gaps (a chunk never leaves
before the one ahead of it) and loss is left to the relay's frame drop (--drop-frames)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class LinkShape:
    latency: float = 0.0
    """One-way delay in seconds."""
    jitter: float = 0.0
    """Each chunk's delay is latency ± up to this much (uniform)."""
    rate_bps: float = 0.0
    """Bandwidth cap in bits per second; 0: none."""


@dataclass
class LinkShaper:
    """One direction of a link."""

    shape: LinkShape = field(default_factory=LinkShape)
    rng: random.Random = field(default_factory=random.Random)
    _busy_until: float = 0.0
    _last_release: float = 0.0
    shaped_bytes: int = 0

    def release_at(self, size: int, now: float) -> float:
        """When a chunk of `size` bytes read at `now` may be written on."""
        start = max(now, self._busy_until)
        if self.shape.rate_bps > 0:
            self._busy_until = start + size * 8 / self.shape.rate_bps
        else:
            self._busy_until = start
        delay = self.shape.latency
        if self.shape.jitter:
            delay += self.rng.uniform(-self.shape.jitter, self.shape.jitter)
        release = max(self._last_release, self._busy_until + max(0.0, delay))
        self._last_release = release
        self.shaped_bytes += size
        return release

    def chunk_limit(self) -> int:
        """How many bytes to read at once: small under a cap, so one read is not seconds of
        link time (a quarter second's worth, at least 64 bytes)."""
        if self.shape.rate_bps <= 0:
            return 65536
        return max(64, min(65536, int(self.shape.rate_bps / 8 / 4)))
