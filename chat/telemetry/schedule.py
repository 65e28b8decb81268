"""When the uploader tries next (sans-IO, injected time and randomness): every `period`
seconds ± `jitter` while uploads succeed, at once again while more is waiting; after a
failure exponential back-off `base × 2^k` capped at `cap`, with full jitter, never sooner
than the collector's `Retry-After`; coming back online brings the next attempt forward to a
random moment in the next `online_spread` seconds (a fleet recovering together does not
arrive all at once)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class UploadSchedule:
    now: float
    period: float = 60.0
    jitter: float = 10.0
    base: float = 30.0
    cap: float = 1800.0
    online_spread: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    next_at: float = 0.0

    def __post_init__(self) -> None:
        self.next_at = self.now + self._regular()

    def _regular(self) -> float:
        return max(0.0, self.period + self.rng.uniform(-self.jitter, self.jitter))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def succeeded(self, now: float, *, more_waiting: bool) -> None:
        self.failures = 0
        self.next_at = now if more_waiting else now + self._regular()

    def failed(self, now: float, retry_after: float | None = None) -> float:
        """Returns the delay chosen."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        delay = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 86_400.0))
        self.next_at = now + delay
        return delay

    def came_online(self, now: float) -> None:
        self.next_at = min(self.next_at, now + self.rng.uniform(0, self.online_spread))
