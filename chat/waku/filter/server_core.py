"""Filter v2 server state, sans-IO: who is subscribed to what, until when, and what not to resend.

A criterion is a (pubsub topic, content topic) pair; a message matches a criterion when both
are equal. Time comes in as `now` (seconds, any monotonic origin). Answers follow nwaku: the
status codes of wire.FilterStatus and descriptions of the form "NOT_FOUND: <cause>".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from chat.waku.filter.wire import (
    RATE_LIMITED_REQUEST_ID,
    FilterStatus,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeType,
)
from chat.waku.message import WakuMessage

MAX_CONTENT_TOPICS_PER_REQUEST = 100
MAX_CRITERIA_PER_PEER = 1000
MAX_PEERS = 1000
"""nwaku's CLI default for --filter-max-peers-to-serve."""
SUBSCRIPTION_TTL = 300.0
"""A subscription lapses after 5 minutes without SUBSCRIBE, UNSUBSCRIBE or PING."""
PUSH_DEDUPE_WINDOW = 120.0
"""A message hash seen within the last 2 minutes is not pushed again."""
MAX_REMEMBERED_HASHES = 200_000
"""Bounds dedupe memory under floods; the oldest hashes are forgotten first."""

RATE_LIMITED_DESC = "filter request rejected due rate limit exceeded"
NO_SUBSCRIPTIONS = "peer has no subscriptions"

Criterion = tuple[str, str]

# The rules, as data: what each request type needs before it can be served.
# needs_topics: a pubsub topic and 1..100 non-empty content topics.
# needs_subscription: the peer must hold a live subscription, else 404.
_NEEDS_TOPICS: dict[SubscribeType, bool] = {
    SubscribeType.SUBSCRIBER_PING: False,
    SubscribeType.SUBSCRIBE: True,
    SubscribeType.UNSUBSCRIBE: True,
    SubscribeType.UNSUBSCRIBE_ALL: False,
}
_NEEDS_SUBSCRIPTION: dict[SubscribeType, bool] = {
    SubscribeType.SUBSCRIBER_PING: True,
    SubscribeType.SUBSCRIBE: False,
    SubscribeType.UNSUBSCRIBE: True,
    SubscribeType.UNSUBSCRIBE_ALL: True,
}


def rate_limited_response() -> SubscribeResponse:
    """nwaku's answer to a request over the rate limit (the body is never read)."""
    return SubscribeResponse(
        RATE_LIMITED_REQUEST_ID, FilterStatus.TOO_MANY_REQUESTS, RATE_LIMITED_DESC
    )


def bad_request_response(cause: str) -> SubscribeResponse:
    """The answer to bytes that do not decode: the request id is unknown."""
    return SubscribeResponse(
        RATE_LIMITED_REQUEST_ID, FilterStatus.BAD_REQUEST, f"BAD_REQUEST: {cause}"
    )


@dataclass(slots=True)
class _Peer:
    last_seen: float
    criteria: set[Criterion] = field(default_factory=set)


class _Refusal(Exception):
    def __init__(self, status: FilterStatus, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause


class SeenHashes:
    """Hashes seen within a time window; seeing one again refreshes it (as nwaku does)."""

    def __init__(self, window: float, max_entries: int) -> None:
        self.window = window
        self.max_entries = max_entries
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def check_and_add(self, key: bytes, now: float) -> bool:
        """True when the key was already seen within the window."""
        self._forget_before(now)
        seen = key in self._expiry
        self._expiry[key] = now + self.window
        self._expiry.move_to_end(key)
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)
        return seen

    def _forget_before(self, now: float) -> None:
        # Refreshing moves a key to the end, so expiries are in order from the front.
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[key]


class FilterSubscriptions:
    """The subscription table of a filter service node."""

    def __init__(
        self,
        *,
        max_content_topics_per_request: int = MAX_CONTENT_TOPICS_PER_REQUEST,
        max_criteria_per_peer: int = MAX_CRITERIA_PER_PEER,
        max_peers: int = MAX_PEERS,
        subscription_ttl: float = SUBSCRIPTION_TTL,
        dedupe_window: float = PUSH_DEDUPE_WINDOW,
        max_remembered_hashes: int = MAX_REMEMBERED_HASHES,
    ) -> None:
        self.max_content_topics_per_request = max_content_topics_per_request
        self.max_criteria_per_peer = max_criteria_per_peer
        self.max_peers = max_peers
        self.subscription_ttl = subscription_ttl
        self._peers: dict[str, _Peer] = {}
        self._by_criterion: dict[Criterion, set[str]] = {}
        self._seen = SeenHashes(dedupe_window, max_remembered_hashes)
        self.duplicates_skipped = 0
        self._handlers: dict[SubscribeType, Callable[[str, frozenset[Criterion], float], None]] = {
            SubscribeType.SUBSCRIBER_PING: self._ping,
            SubscribeType.SUBSCRIBE: self._subscribe,
            SubscribeType.UNSUBSCRIBE: self._unsubscribe,
            SubscribeType.UNSUBSCRIBE_ALL: self._unsubscribe_all,
        }

    # -- queries ---------------------------------------------------------------------------

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    def is_subscribed(self, peer: str, now: float) -> bool:
        state = self._peers.get(peer)
        return state is not None and now - state.last_seen <= self.subscription_ttl

    def criteria_of(self, peer: str) -> frozenset[Criterion]:
        state = self._peers.get(peer)
        return frozenset(state.criteria) if state else frozenset()

    # -- requests --------------------------------------------------------------------------

    def handle(self, peer: str, request: SubscribeRequest, now: float) -> SubscribeResponse:
        try:
            kind = SubscribeType(request.kind)
        except ValueError:
            return self._answer(
                request,
                _Refusal(FilterStatus.BAD_REQUEST, f"unknown filter subscribe type {request.kind}"),
            )
        try:
            criteria = self._criteria(kind, request)
            if _NEEDS_SUBSCRIPTION[kind] and not self.is_subscribed(peer, now):
                raise _Refusal(FilterStatus.NOT_FOUND, NO_SUBSCRIPTIONS)
            self._handlers[kind](peer, criteria, now)
        except _Refusal as refusal:
            return self._answer(request, refusal)
        return SubscribeResponse(request.request_id, FilterStatus.OK, "OK")

    def _criteria(self, kind: SubscribeType, request: SubscribeRequest) -> frozenset[Criterion]:
        if not _NEEDS_TOPICS[kind]:
            return frozenset()
        if request.pubsub_topic is None or not request.content_topics:
            raise _Refusal(
                FilterStatus.BAD_REQUEST, "pubsubTopic and contentTopics must be specified"
            )
        if len(request.content_topics) > self.max_content_topics_per_request:
            raise _Refusal(
                FilterStatus.BAD_REQUEST,
                f"exceeds maximum content topics: {self.max_content_topics_per_request}",
            )
        if not request.pubsub_topic or not all(request.content_topics):
            raise _Refusal(FilterStatus.BAD_REQUEST, "topics must not be empty")
        return frozenset((request.pubsub_topic, topic) for topic in request.content_topics)

    @staticmethod
    def _answer(request: SubscribeRequest, refusal: _Refusal) -> SubscribeResponse:
        return SubscribeResponse(
            request.request_id, refusal.status, f"{refusal.status.name}: {refusal.cause}"
        )

    def _ping(self, peer: str, criteria: frozenset[Criterion], now: float) -> None:
        self._peers[peer].last_seen = now

    def _subscribe(self, peer: str, criteria: frozenset[Criterion], now: float) -> None:
        if peer in self._peers and not self.is_subscribed(peer, now):
            self.remove_peer(peer)  # a lapsed subscription does not come back to life
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self.max_peers:
                self.expire(now)
            if len(self._peers) >= self.max_peers:
                raise _Refusal(
                    FilterStatus.SERVICE_UNAVAILABLE,
                    f"node has reached maximum number of subscriptions: {self.max_peers}",
                )
            state = _Peer(last_seen=now)
        new = criteria - state.criteria
        if len(state.criteria) + len(new) > self.max_criteria_per_peer:
            raise _Refusal(
                FilterStatus.SERVICE_UNAVAILABLE,
                "peer has reached maximum number of filter criteria",
            )
        state.last_seen = now
        self._peers[peer] = state
        state.criteria |= new
        for criterion in new:
            self._by_criterion.setdefault(criterion, set()).add(peer)

    def _unsubscribe(self, peer: str, criteria: frozenset[Criterion], now: float) -> None:
        state = self._peers[peer]
        state.last_seen = now
        present = criteria & state.criteria
        self._drop_criteria(peer, state, present)
        if not state.criteria:
            del self._peers[peer]
        if present != criteria:
            raise _Refusal(FilterStatus.NOT_FOUND, NO_SUBSCRIPTIONS)

    def _unsubscribe_all(self, peer: str, criteria: frozenset[Criterion], now: float) -> None:
        self.remove_peer(peer)

    # -- maintenance -----------------------------------------------------------------------

    def remove_peer(self, peer: str) -> None:
        state = self._peers.pop(peer, None)
        if state is not None:
            self._drop_criteria(peer, state, frozenset(state.criteria))

    def expire(self, now: float) -> list[str]:
        """Drop subscriptions that lapsed; returns the peers removed."""
        lapsed = [p for p, s in self._peers.items() if now - s.last_seen > self.subscription_ttl]
        for peer in lapsed:
            self.remove_peer(peer)
        return lapsed

    def _drop_criteria(self, peer: str, state: _Peer, criteria: frozenset[Criterion]) -> None:
        for criterion in criteria:
            state.criteria.discard(criterion)
            peers = self._by_criterion.get(criterion)
            if peers is not None:
                peers.discard(peer)
                if not peers:
                    del self._by_criterion[criterion]

    # -- pushes ----------------------------------------------------------------------------

    def subscribers_for(self, pubsub_topic: str, message: WakuMessage, now: float) -> list[str]:
        """Peers to push this message to: live subscribers, unless it was pushed recently."""
        peers = self._by_criterion.get((pubsub_topic, message.content_topic))
        if not peers:
            return []
        live = sorted(p for p in peers if self.is_subscribed(p, now))
        if not live:
            return []
        if self._seen.check_and_add(message.hash(pubsub_topic), now):
            self.duplicates_skipped += 1
            return []
        return live
