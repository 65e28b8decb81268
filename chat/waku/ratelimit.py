"""Per-peer token buckets for every request/response server, with nwaku's arithmetic (sans-IO).

nwaku (`waku/common/rate_limit/`) gives store, light push and peer exchange a *global* bucket
of `volume` tokens per `period`, plus a bucket per peer of floor(volume × r × 0.75) tokens per
period × r, where r = 10 if period ≤ 1 s, 3 if ≤ 1 min, else 2; a request must pass both.
Filter uses a per-peer bucket of `volume` per `period` only. nwaku's defaults leave everything
unlimited except filter (30 requests per minute per peer); ours limit every service
(`DEFAULT_RATE_LIMITS`: a public node must not be open to a flood by default), and
`PROTO:off` removes a limit on purpose.

Two deliberate differences, both so that one flooding peer cannot starve the others:
- a peer may also take at most 75 % of the global volume within one global period (nwaku's
  long per-peer window alone lets a single peer empty the global bucket for several periods);
- buckets refill to capacity once a period has passed (nwaku's "strict" mode); nwaku's default
  "compensating" mode adds up to 25 % extra after busy periods, which we leave out.
A rejected request is answered without reading its body (the server's job; see store/server).
Time is injected: `now` is any monotonic clock in seconds.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

PROTOCOLS = ("store", "lightpush", "filter", "px", "sync")
# nwaku accepts these names too; they configure the same services here.
PROTOCOL_ALIASES = {"storev2": "store", "storev3": "store"}
PER_PEER_SHARE = 0.75
MAX_TRACKED_PEERS = 10_000

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_FLAG = re.compile(r"^(?:(?P<proto>[a-z0-9]+):)?(?P<volume>\d+)/(?P<num>\d+)(?P<unit>ms|h|m|s)$")
_OFF = re.compile(r"^(?:(?P<proto>[a-z0-9]+):)?(?:off|none)$")


class RateLimiter(Protocol):
    """What every request/response server asks before it serves a request: may `peer` (any
    hashable key naming the remote peer; servers pass its base58 peer id) be served at `now`
    (monotonic seconds)? A True answer consumes the request's share of the budget."""

    def allow(self, peer: Hashable, now: float, /) -> bool: ...


class RateLimitError(ValueError):
    """A rate-limit setting that cannot be understood."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`volume` requests per `period` seconds."""

    volume: int
    period: float

    def __post_init__(self) -> None:
        if self.volume <= 0 or self.period <= 0:
            raise RateLimitError(f"rate limit needs a positive volume and period, not {self}")

    def __str__(self) -> str:
        return f"{self.volume}/{self.period:g}s"


DEFAULT_RATE_LIMITS: Mapping[str, RateLimit | None] = {
    "store": RateLimit(50, 1.0),
    "lightpush": RateLimit(30, 1.0),
    "filter": RateLimit(30, 60.0),
    "px": RateLimit(10, 1.0),
    "sync": RateLimit(30, 60.0),
}
"""What `chinwag node` applies without --rate-limit (docs/operator-guide.md, "Rate limits")."""

_NOT_SET = object()


def parse_rate_limit(text: str) -> tuple[str | None, RateLimit | None]:
    """Parse nwaku's `--rate-limit` syntax: `[proto:]volume/period<unit>`, e.g. `store:20/1s`,
    or `[proto:]off` for no limit (ours; nwaku has no way to lift a default).

    Returns (protocol or None for "every protocol", limit or None for "unlimited").
    """
    text = text.strip()
    off = _OFF.match(text)
    match = off or _FLAG.match(text)
    if not match:
        raise RateLimitError(
            f"{text!r} is not of the form [protocol:]volume/period(h|m|s|ms) or [protocol:]off"
        )
    proto = match["proto"]
    if proto is not None:
        proto = PROTOCOL_ALIASES.get(proto, proto)
        if proto not in PROTOCOLS:
            raise RateLimitError(f"unknown protocol {proto!r}; one of {', '.join(PROTOCOLS)}")
    if off:
        return proto, None
    period = int(match["num"]) * _UNITS[match["unit"]]
    return proto, RateLimit(int(match["volume"]), period)


def rate_limits_from_flags(flags: Iterable[str]) -> dict[str, RateLimit | None]:
    """Per-protocol limits from `--rate-limit` values on top of `DEFAULT_RATE_LIMITS`.

    A flag without a protocol sets every protocol that has no flag of its own.
    """
    explicit: dict[str, RateLimit | None] = {}
    fallback: object = _NOT_SET
    for flag in flags:
        proto, limit = parse_rate_limit(flag)
        if proto is None:
            fallback = limit
        else:
            explicit[proto] = limit
    out: dict[str, RateLimit | None] = {}
    for proto in PROTOCOLS:
        if proto in explicit:
            out[proto] = explicit[proto]
        elif isinstance(fallback, RateLimit) or fallback is None:
            out[proto] = fallback
        else:
            out[proto] = DEFAULT_RATE_LIMITS[proto]
    return out


def period_ratio(period: float) -> int:
    """nwaku's r: how many global periods a peer's long window spans."""
    if period <= 1.0:
        return 10
    if period <= 60.0:
        return 3
    return 2


class TokenBucket:
    """`capacity` tokens, refilled to capacity once `period` has passed since it was last full."""

    def __init__(self, capacity: int, period: float, now: float) -> None:
        self.capacity = capacity
        self.period = period
        self.tokens = capacity
        self._full_since = now

    def ready(self, now: float) -> bool:
        """True if one token can be taken now (refills first if a period has passed)."""
        if self.tokens >= self.capacity:
            self._full_since = now
        elif now - self._full_since >= self.period:
            self.tokens = self.capacity
            self._full_since = now
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1


class _PeerState:
    __slots__ = ("buckets", "last_seen")

    def __init__(self, buckets: list[TokenBucket], now: float) -> None:
        self.buckets = buckets
        self.last_seen = now


class RequestLimiter:
    """Decides, per request, whether a peer is served. `limit=None` means unlimited."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        per_peer_only: bool = False,
        max_tracked_peers: int = MAX_TRACKED_PEERS,
    ) -> None:
        self.limit = limit
        self.per_peer_only = per_peer_only
        self.max_tracked_peers = max_tracked_peers
        self._global: TokenBucket | None = None
        self._peers: OrderedDict[Hashable, _PeerState] = OrderedDict()
        self._last_sweep = -math.inf
        if limit is None:
            self._peer_timeout = 0.0
        elif per_peer_only:
            self._peer_timeout = 2 * limit.period
        else:
            self._peer_timeout = 2 * limit.period * period_ratio(limit.period)

    @property
    def tracked_peers(self) -> int:
        return len(self._peers)

    def _new_peer_buckets(self, limit: RateLimit, now: float) -> list[TokenBucket]:
        if self.per_peer_only:
            return [TokenBucket(limit.volume, limit.period, now)]
        r = period_ratio(limit.period)
        long_window = max(1, math.floor(limit.volume * r * PER_PEER_SHARE))
        share = max(1, math.floor(limit.volume * PER_PEER_SHARE))
        return [
            TokenBucket(long_window, limit.period * r, now),
            TokenBucket(share, limit.period, now),
        ]

    def _sweep(self, now: float) -> None:
        # Forget peers idle for longer than their window: their buckets would be full again.
        while self._peers:
            peer, state = next(iter(self._peers.items()))
            if now - state.last_seen < self._peer_timeout and len(self._peers) <= (
                self.max_tracked_peers
            ):
                break
            del self._peers[peer]
        self._last_sweep = now

    def allow(self, peer: Hashable, now: float) -> bool:
        """Consume one request's tokens if the peer and the service both have them."""
        limit = self.limit
        if limit is None:
            return True
        if (
            now - self._last_sweep >= self._peer_timeout
            or len(self._peers) > self.max_tracked_peers
        ):
            self._sweep(now)
        state = self._peers.get(peer)
        if state is None:
            state = _PeerState(self._new_peer_buckets(limit, now), now)
            self._peers[peer] = state
        else:
            self._peers.move_to_end(peer)
            state.last_seen = now
        buckets = list(state.buckets)
        if not self.per_peer_only:
            if self._global is None:
                self._global = TokenBucket(limit.volume, limit.period, now)
            buckets.append(self._global)
        # Check every bucket before taking from any, so a rejection costs nobody a token.
        if not all([b.ready(now) for b in buckets]):
            return False
        for b in buckets:
            b.take()
        return True


def limiter_for(protocol: str, limits: Mapping[str, RateLimit | None]) -> RequestLimiter:
    """The limiter nwaku would build for `protocol` (filter is per-peer only)."""
    proto = PROTOCOL_ALIASES.get(protocol, protocol)
    if proto not in PROTOCOLS:
        raise RateLimitError(f"unknown protocol {protocol!r}")
    return RequestLimiter(limits.get(proto), per_peer_only=proto == "filter")
