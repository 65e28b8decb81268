"""Outgoing message states: one table-driven state machine, every transition with evidence.

A message's state says what we can prove, never what we hope:

    queued     committed to the outbox; nothing on the wire yet (or the last try failed)
    sent       relay accepted it for >= 1 peer, or a light push node answered 200
    stored     a store node answered a presence query with its hash
    delivered  the recipient's SDS traffic acknowledges it
    failed     the retry budget ran out, or a permanent rejection; always with a reason

Rules (the table below is the whole truth; everything else only schedules):
- Evidence moves a message forward, never back: an acknowledgement delivers it from any
  state, including failed (a late ack is still proof).
- A failed attempt keeps a queued message queued and schedules the next attempt; when the
  budget is spent the message fails with the reason of the last error.
- Sent and stored messages are re-sent on the same schedule until acknowledged; when that
  budget is spent they fail ("no acknowledgement ...") but stay ready for a late ack.
- A permanent rejection (too large, invalid) fails at once: retrying cannot help.
- The user may retry a failed message at any time: it is queued with a fresh budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(Enum):
    QUEUED = "queued"
    SENT = "sent"
    STORED = "stored"
    DELIVERED = "delivered"
    FAILED = "failed"


class Event(Enum):
    ENQUEUED = "enqueued"  # committed to the outbox
    PUBLISHED = "published"  # relay reached >= 1 peer / light push 200
    ATTEMPT_FAILED = "attempt_failed"  # transient: try again later
    BUDGET_SPENT = "budget_spent"
    REJECTED = "rejected"  # permanent: retrying cannot help
    STORE_CONFIRMED = "store_confirmed"
    ACKNOWLEDGED = "acknowledged"
    RETRY_REQUESTED = "retry_requested"  # by the user


Q, S, ST, D, F = State.QUEUED, State.SENT, State.STORED, State.DELIVERED, State.FAILED

TRANSITIONS: dict[tuple[State, Event], State] = {
    (Q, Event.PUBLISHED): S,
    (Q, Event.ATTEMPT_FAILED): Q,
    (Q, Event.BUDGET_SPENT): F,
    (Q, Event.REJECTED): F,
    (Q, Event.STORE_CONFIRMED): ST,  # a retry found an earlier copy already stored
    (Q, Event.ACKNOWLEDGED): D,
    (S, Event.PUBLISHED): S,  # a re-send while waiting for the ack
    (S, Event.ATTEMPT_FAILED): S,  # a re-send failed; the earlier copy is still out there
    (S, Event.BUDGET_SPENT): F,
    (S, Event.STORE_CONFIRMED): ST,
    (S, Event.ACKNOWLEDGED): D,
    (ST, Event.PUBLISHED): ST,
    (ST, Event.ATTEMPT_FAILED): ST,
    (ST, Event.BUDGET_SPENT): F,
    (ST, Event.STORE_CONFIRMED): ST,
    (ST, Event.ACKNOWLEDGED): D,
    (F, Event.ACKNOWLEDGED): D,
    (F, Event.STORE_CONFIRMED): F,  # noted as evidence; still needs the user or an ack
    (F, Event.RETRY_REQUESTED): Q,
    (D, Event.ACKNOWLEDGED): D,  # duplicate acks are harmless
    (D, Event.STORE_CONFIRMED): D,
    (D, Event.PUBLISHED): D,
}

ACTIVE_STATES = frozenset({Q, S, ST})
"""States in which the outbox still works on a message."""


class OutboxError(Exception):
    pass


class InvalidTransition(OutboxError):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value} is not possible for a {state.value} message")
        self.state = state
        self.event = event


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: first_delay * factor**n, capped, max_attempts tries."""

    max_attempts: int = 8
    first_delay: float = 10.0
    factor: float = 2.0
    max_delay: float = 30 * 60.0
    jitter: float = 0.1
    ack_timeout: float = 60.0
    """How long a sent message waits for its acknowledgement before the first re-send."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Delay after attempt number `attempt` (1-based) before the next one."""
        base = min(self.max_delay, self.first_delay * self.factor ** max(0, attempt - 1))
        return base * (1 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class Transition:
    message_id: str
    old: State | None
    """None for the transition that created the entry."""
    new: State
    event: Event
    at: float
    evidence: dict[str, Any]


@dataclass
class OutboxEntry:
    message_id: str
    conversation_id: str
    created_at: float
    state: State = Q
    attempts: int = 0
    max_attempts: int = 8
    next_attempt_at: float | None = None
    reason: str | None = None
    history: list[Transition] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.state in ACTIVE_STATES


class Outbox:
    """Sans-IO: the caller persists each returned Transition before acting on the next."""

    def __init__(self, policy: RetryPolicy | None = None, rng: random.Random | None = None):
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._entries: dict[str, OutboxEntry] = {}

    # ---- queries -------------------------------------------------------------------------
    def get(self, message_id: str) -> OutboxEntry:
        try:
            return self._entries[message_id]
        except KeyError:
            raise OutboxError(f"no message {message_id} in the outbox") from None

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._entries

    def pending(self) -> list[OutboxEntry]:
        """Everything not yet delivered or failed, oldest first (the outbox view)."""
        return sorted((e for e in self._entries.values() if e.pending), key=lambda e: e.created_at)

    def undelivered(self) -> list[OutboxEntry]:
        return sorted(
            (e for e in self._entries.values() if e.state is not D), key=lambda e: e.created_at
        )

    def due(self, now: float) -> list[OutboxEntry]:
        """Messages whose next attempt is due, oldest first."""
        return [
            e for e in self.pending() if e.next_attempt_at is not None and e.next_attempt_at <= now
        ]

    def next_wakeup(self) -> float | None:
        times = [e.next_attempt_at for e in self.pending() if e.next_attempt_at is not None]
        return min(times) if times else None

    # ---- commands ------------------------------------------------------------------------
    def enqueue(self, message_id: str, conversation_id: str, now: float) -> Transition:
        """A new outgoing message, due at once. Enqueueing an id twice is a no-op."""
        if message_id in self._entries:
            return self._entries[message_id].history[0]
        entry = OutboxEntry(
            message_id,
            conversation_id,
            created_at=now,
            max_attempts=self.policy.max_attempts,
            next_attempt_at=now,
        )
        self._entries[message_id] = entry
        created = Transition(message_id, None, Q, Event.ENQUEUED, now, {})
        entry.history.append(created)
        return created

    def restore(self, entry: OutboxEntry) -> None:
        """Load an entry read back from storage."""
        self._entries[entry.message_id] = entry

    def discard(self, message_id: str) -> OutboxEntry:
        """The user gave up on a message: forget it (the caller records that)."""
        entry = self.get(message_id)
        del self._entries[message_id]
        return entry

    def attempt_started(self, message_id: str) -> int:
        """Counts an attempt; returns its number. The caller then reports its outcome."""
        entry = self.get(message_id)
        entry.attempts += 1
        entry.next_attempt_at = None
        return entry.attempts

    def published(self, message_id: str, now: float, **evidence: Any) -> Transition:
        entry = self.get(message_id)
        transition = self._apply(entry, Event.PUBLISHED, now, evidence)
        if entry.state in (S, ST):
            entry.reason = None
            self._schedule_resend(entry, now, self.policy.ack_timeout)
        return transition

    def attempt_failed(
        self, message_id: str, now: float, reason: str, **evidence: Any
    ) -> Transition:
        entry = self.get(message_id)
        if entry.attempts >= entry.max_attempts:
            if entry.state is not Q:
                reason = (
                    f"no acknowledgement from the recipient after {entry.attempts} attempts "
                    f"(last re-send: {reason})"
                )
            return self._fail(entry, now, reason, evidence)
        transition = self._apply(entry, Event.ATTEMPT_FAILED, now, {"reason": reason, **evidence})
        entry.reason = reason
        self._schedule_resend(entry, now, self.policy.delay(entry.attempts, self._rng))
        return transition

    def ack_overdue(self, message_id: str, now: float) -> Transition | None:
        """Called when a sent/stored message is due again; fails it when the budget is spent."""
        entry = self.get(message_id)
        if entry.state in (S, ST) and entry.attempts >= entry.max_attempts:
            return self._fail(
                entry,
                now,
                f"no acknowledgement from the recipient after {entry.attempts} attempts",
                {},
            )
        return None

    def rejected(self, message_id: str, now: float, reason: str, **evidence: Any) -> Transition:
        entry = self.get(message_id)
        transition = self._apply(entry, Event.REJECTED, now, {"reason": reason, **evidence})
        entry.reason = reason
        entry.next_attempt_at = None
        return transition

    def store_confirmed(self, message_id: str, now: float, **evidence: Any) -> Transition:
        return self._apply(self.get(message_id), Event.STORE_CONFIRMED, now, evidence)

    def acknowledged(self, message_id: str, now: float, **evidence: Any) -> Transition:
        entry = self.get(message_id)
        transition = self._apply(entry, Event.ACKNOWLEDGED, now, evidence)
        entry.reason = None
        entry.next_attempt_at = None
        return transition

    def retry(self, message_id: str, now: float) -> Transition | None:
        """Manual retry: a failed message is queued with a fresh budget; a pending one is
        simply made due now. Returns the transition when the state changed."""
        entry = self.get(message_id)
        if entry.state is D:
            raise OutboxError("a delivered message cannot be retried")
        if entry.state is F:
            transition = self._apply(entry, Event.RETRY_REQUESTED, now, {"by": "user"})
            entry.max_attempts = entry.attempts + self.policy.max_attempts
            entry.reason = None
            entry.next_attempt_at = now
            return transition
        entry.next_attempt_at = now
        return None

    # ---- internals -----------------------------------------------------------------------
    def _fail(
        self, entry: OutboxEntry, now: float, reason: str, evidence: dict[str, Any]
    ) -> Transition:
        transition = self._apply(
            entry,
            Event.BUDGET_SPENT,
            now,
            {"reason": reason, "attempts": entry.attempts, **evidence},
        )
        entry.reason = reason
        entry.next_attempt_at = None
        return transition

    def _schedule_resend(self, entry: OutboxEntry, now: float, delay: float) -> None:
        entry.next_attempt_at = now + delay

    @staticmethod
    def _apply(
        entry: OutboxEntry, event: Event, now: float, evidence: dict[str, Any]
    ) -> Transition:
        try:
            new = TRANSITIONS[(entry.state, event)]
        except KeyError:
            raise InvalidTransition(entry.state, event) from None
        transition = Transition(entry.message_id, entry.state, new, event, now, dict(evidence))
        entry.state = new
        entry.history.append(transition)
        return transition
