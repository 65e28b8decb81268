"""The relay validator pipeline: what a relay checks before it delivers or forwards a message.

In order, cheapest first:

1. size: the encoded WakuMessage is at most `max_message_size` bytes (150 KiB by default);
2. decode: the data is a WakuMessage (lenient proto3, meta at most 64 bytes);
3. protected shard: on a shard configured with a public key, `meta` is a valid low-S
   secp256k1 signature by that key and the timestamp is within ±5 min (waku-wire.md §10);
4. timestamp sanity: the timestamp is set, and within `max_clock_skew_ns` of our clock.

Reject means the message is invalid in itself, so whoever forwarded it is penalised (gossipsub
invalid-message deliveries). Ignore means we drop it without blaming the forwarder: a message
just outside our time window may have been inside it on an honest relay whose clock differs
from ours, and punishing that relay would split the mesh over clock skew. See
docs/protocol.md, "Validation", for the bounds and why.

The validator is sans-IO: the clock is injected, and it returns a verdict as data.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, MessageError, WakuMessage
from chat.waku.protected import (
    MissingTimestamp,
    ProtectedShardError,
    ShardKeyPair,
    ShardPublicKey,
    check_signed_message,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_CLOCK_SKEW_NS = 5 * 60 * 1_000_000_000
"""Timestamp sanity bound for unprotected shards: the same ±5 min as protected shards."""

REASON_TOO_LARGE = "too_large"
REASON_UNDECODABLE = "undecodable"
REASON_NO_TIMESTAMP = "timestamp_missing"
REASON_OUT_OF_WINDOW = "timestamp_out_of_window"


class Outcome(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one relayed message; `message` is the decoded message when accepted."""

    outcome: Outcome
    reason: str = ""
    message: WakuMessage | None = field(default=None, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


def accept(message: WakuMessage) -> Verdict:
    return Verdict(Outcome.ACCEPT, message=message)


def reject(reason: str) -> Verdict:
    return Verdict(Outcome.REJECT, reason)


def ignore(reason: str) -> Verdict:
    return Verdict(Outcome.IGNORE, reason)


class RelayValidator:
    """Validates relay messages; call it as `validator(pubsub_topic, data, from_peer)`.

    `clock` returns Unix nanoseconds. `protected` maps pubsub topics to their shard key; the
    mapping is copied, and can be changed later with `protect` / `unprotect` (a community
    joined or left).
    """

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        protected: Mapping[str, ShardPublicKey] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_clock_skew_ns: int = DEFAULT_MAX_CLOCK_SKEW_NS,
    ) -> None:
        if max_message_size <= 0 or max_clock_skew_ns <= 0:
            raise ValueError("max_message_size and max_clock_skew_ns must be positive")
        self._clock = clock
        self._protected: dict[str, ShardPublicKey] = dict(protected or {})
        self.max_message_size = max_message_size
        self.max_clock_skew_ns = max_clock_skew_ns
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.protected_rejected: Counter[tuple[str, str]] = Counter()
        """Rejections on protected shards, by (pubsub topic, reason): which shard is attacked."""
        self.key_changes: Counter[str] = Counter()
        """Key rotations per protected pubsub topic."""

    def protect(self, pubsub_topic: str, key: ShardPublicKey) -> ShardPublicKey | None:
        """Protect a shard with `key`, or rotate its key: from this call on only messages
        signed by `key` pass, and those signed by the previous key are rejected at once (a
        banned member's key must stop working now, not after a grace period). Returns the
        previous key, None if the shard was not protected."""
        previous = self._protected.get(pubsub_topic)
        self._protected[pubsub_topic] = key
        if previous is None:
            log.info("protected shard %s: key %s", pubsub_topic, key.to_hex())
        elif previous != key:
            self.key_changes[pubsub_topic] += 1
            log.info(
                "protected shard %s: key rotated from %s to %s",
                pubsub_topic,
                previous.to_hex(),
                key.to_hex(),
            )
        return previous

    def unprotect(self, pubsub_topic: str) -> None:
        self._protected.pop(pubsub_topic, None)

    def is_protected(self, pubsub_topic: str) -> bool:
        return pubsub_topic in self._protected

    def protection_key(self, pubsub_topic: str) -> ShardPublicKey | None:
        """The public key a shard's messages must be signed with now, None if unprotected."""
        return self._protected.get(pubsub_topic)

    @property
    def protected_topics(self) -> dict[str, ShardPublicKey]:
        return dict(self._protected)

    def __call__(self, pubsub_topic: str, data: bytes, from_peer: object = None) -> Verdict:
        return self.validate(pubsub_topic, data, from_peer)

    def validate(self, pubsub_topic: str, data: bytes, from_peer: object = None) -> Verdict:
        verdict = self._check(pubsub_topic, data)
        if verdict.outcome is Outcome.ACCEPT:
            self.accepted += 1
        else:
            counters = self.rejected if verdict.outcome is Outcome.REJECT else self.ignored
            counters[verdict.reason] += 1
            if verdict.outcome is Outcome.REJECT and pubsub_topic in self._protected:
                self._count_protected_rejection(pubsub_topic, verdict.reason, from_peer)
            log.debug(
                "relay message on %s from %s: %s (%s)",
                pubsub_topic,
                from_peer,
                verdict.outcome.value,
                verdict.reason,
            )
        return verdict

    def _count_protected_rejection(self, pubsub_topic: str, reason: str, peer: object) -> None:
        key = (pubsub_topic, reason)
        self.protected_rejected[key] += 1
        if self.protected_rejected[key] == 1:
            # Once per shard and reason (a bounded number of lines); the metrics count the rest.
            log.warning(
                "protected shard %s: rejected a message from %s (%s); further ones are only "
                "counted (chinwag_relay_protected_rejections_total)",
                pubsub_topic,
                "this node (its own or a light-pushed message)" if peer is None else peer,
                reason,
            )

    def _check(self, pubsub_topic: str, data: bytes) -> Verdict:
        if len(data) > self.max_message_size:
            return reject(REASON_TOO_LARGE)
        try:
            msg = WakuMessage.decode(data, max_size=self.max_message_size)
        except MessageError:
            return reject(REASON_UNDECODABLE)
        now = self._clock()
        key = self._protected.get(pubsub_topic)
        if key is not None:
            try:
                check_signed_message(pubsub_topic, msg, key, now)
            except ProtectedShardError as exc:
                return reject(exc.reason)
        if msg.timestamp == 0:
            return reject(REASON_NO_TIMESTAMP)
        if abs(now - msg.timestamp) > self.max_clock_skew_ns:
            return ignore(REASON_OUT_OF_WINDOW)
        return accept(msg)

    def counters(self) -> dict[str, int]:
        """Flat metrics: `accepted`, `rejected.<reason>`, `ignored.<reason>`."""
        out = {"accepted": self.accepted}
        out.update({f"rejected.{k}": v for k, v in self.rejected.items()})
        out.update({f"ignored.{k}": v for k, v in self.ignored.items()})
        return out


class ShardSigner:
    """The publisher's side: signs messages bound for the protected shards we hold keys for."""

    def __init__(self, keys: Mapping[str, ShardKeyPair] | None = None) -> None:
        self._keys: dict[str, ShardKeyPair] = dict(keys or {})

    def add_key(self, pubsub_topic: str, pair: ShardKeyPair) -> None:
        self._keys[pubsub_topic] = pair

    def remove_key(self, pubsub_topic: str) -> None:
        self._keys.pop(pubsub_topic, None)

    def is_protected(self, pubsub_topic: str) -> bool:
        return pubsub_topic in self._keys

    def prepare(self, pubsub_topic: str, msg: WakuMessage) -> WakuMessage:
        """`msg` ready to publish: signed if the topic is protected, otherwise unchanged.

        Raises `MissingTimestamp` for timestamp 0, which every relay would drop anyway.
        """
        if msg.timestamp == 0:
            raise MissingTimestamp("set the timestamp before publishing: relays reject 0")
        pair = self._keys.get(pubsub_topic)
        return msg if pair is None else pair.sign(pubsub_topic, msg)
