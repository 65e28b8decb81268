"""What one install (and one registering address) may send the collector: sans-IO, with the
time passed in. Kept in memory only: addresses are never written anywhere.

- uploads: a token bucket per install (`batches_per_minute`, `burst`);
- events: a daily cap per install (UTC day), counted on accepted events;
- registrations: a token bucket per source address, and one for all sources together.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class CollectorLimits:
    batches_per_minute: float = 6.0
    burst: int = 10
    events_per_day: int = 20_000
    registrations_per_minute: float = 60.0
    registration_burst: int = 20
    registrations_per_source_per_minute: float = 2.0
    registration_source_burst: int = 5
    tracked: int = 100_000
    """Installs or sources remembered at once; the least recently seen are forgotten first."""


@dataclass(slots=True)
class TokenBucket:
    rate: float
    """Tokens per second."""
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a token was taken; otherwise the seconds until one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class _Buckets:
    def __init__(self, rate: float, burst: int, tracked: int) -> None:
        self._rate = rate
        self._burst = burst
        self._tracked = tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, self._burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._tracked:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket.take(now)


class Limiter:
    """The collector's limits, keyed by install id and (for registration) source address."""

    def __init__(self, limits: CollectorLimits) -> None:
        self.limits = limits
        self._uploads = _Buckets(limits.batches_per_minute / 60, limits.burst, limits.tracked)
        self._registrations = TokenBucket(
            limits.registrations_per_minute / 60,
            limits.registration_burst,
            limits.registration_burst,
            0.0,
        )
        self._sources = _Buckets(
            limits.registrations_per_source_per_minute / 60,
            limits.registration_source_burst,
            limits.tracked,
        )
        self._day: int | None = None
        self._today: dict[str, int] = {}

    def upload(self, install_id: str, now: float) -> float:
        """0: this upload may go on; else the seconds to wait (`Retry-After`)."""
        return self._uploads.take(install_id, now)

    def register(self, source: str, now: float) -> float:
        if self._registrations.stamp == 0.0:
            self._registrations.stamp = now
        wait = self._sources.take(source, now)
        if wait:
            return wait
        return self._registrations.take(now)

    def known_today(self, install_id: str, wall_s: float) -> bool:
        self._roll(wall_s)
        return install_id in self._today

    def seed_today(self, install_id: str, count: int, wall_s: float) -> None:
        """The events already stored today (after a restart, from the database)."""
        self._roll(wall_s)
        self._today.setdefault(install_id, count)

    def remaining_today(self, install_id: str, wall_s: float) -> int:
        """New events this install may still store today (UTC)."""
        self._roll(wall_s)
        return max(0, self.limits.events_per_day - self._today.get(install_id, 0))

    @staticmethod
    def until_tomorrow(wall_s: float) -> float:
        return DAY_S - wall_s % DAY_S

    def count(self, install_id: str, accepted: int, wall_s: float) -> None:
        self._roll(wall_s)
        self._today[install_id] = self._today.get(install_id, 0) + accepted

    def forget(self, install_id: str) -> None:
        self._today.pop(install_id, None)

    def _roll(self, wall_s: float) -> None:
        day = int(wall_s // DAY_S)
        if day != self._day:
            self._day = day
            self._today = {}
