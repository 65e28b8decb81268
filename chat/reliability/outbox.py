"""Outgoing message states: one table-driven state machine, every transition with evidence.

A message's state says what we can prove, never what we hope:

    queued     committed to the outbox; nothing on the wire yet (or the last try failed)
    sent       relay accepted it for >= 1 peer, or a light push node answered 200
    stored     a store node answered a presence query with its hash
    delivered  the recipient's SDS traffic acknowledges it
    failed     a budget ran out, or a permanent rejection; always with a reason

Rules (the table below is the whole truth; everything else only schedules):
- Evidence moves a message forward, never back: an acknowledgement delivers it from any
  state, including failed (a late ack is still proof).
- One attempt at a time: `attempt_started` opens it, and exactly one outcome (`published`,
  `attempt_failed`, `rejected`) closes it. Other evidence may arrive while it is under way;
  an outcome that arrives after the message was delivered is recorded and changes nothing.
- Two budgets. Getting a queued message onto the network: a failed attempt keeps it queued
  and schedules the next one (`first_delay` doubling up to `max_delay`); after
  `max_attempts` attempts it fails with the reason of the last error. Waiting for the
  acknowledgement: a sent or stored message is re-sent `ack_timeout` after it was sent, then
  after `ack_timeout` doubling up to `max_resend_delay`; when it is due again after
  `max_resends` re-sends (successful or not) it fails ("no acknowledgement ...") but stays
  ready for a late ack. A failed re-send keeps it sent: the earlier copy is still out there.
- A permanent rejection (too large, invalid) fails at once, also of a re-send: retrying the
  same bytes cannot help.
- The user may retry a failed message at any time: it is queued with both budgets fresh.
  A pending one is made due now. But a manual retry while no peer is reachable attempts
  nothing (it would only spend the budget and lengthen the backoff): a pending message is
  left exactly as it was (`NoPeersNow` says so), and a failed one is queued with fresh
  budgets on the ordinary schedule, to go as soon as peers are back.
- The count shown with a message is the budget it spends now, never more than its size:
  `budget()` is ("attempt", n, max) while it is queued, ("re-send", n, max) once sent.
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


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.QUEUED, Event.PUBLISHED): State.SENT,
    (State.QUEUED, Event.ATTEMPT_FAILED): State.QUEUED,
    (State.QUEUED, Event.BUDGET_SPENT): State.FAILED,
    (State.QUEUED, Event.REJECTED): State.FAILED,
    # a retry found an earlier copy already stored
    (State.QUEUED, Event.STORE_CONFIRMED): State.STORED,
    (State.QUEUED, Event.ACKNOWLEDGED): State.DELIVERED,
    (State.SENT, Event.PUBLISHED): State.SENT,  # a re-send while waiting for the ack
    # a re-send failed; the earlier copy is still out there
    (State.SENT, Event.ATTEMPT_FAILED): State.SENT,
    (State.SENT, Event.BUDGET_SPENT): State.FAILED,
    # a re-send refused: re-sending cannot help; a late ack still can
    (State.SENT, Event.REJECTED): State.FAILED,
    (State.SENT, Event.STORE_CONFIRMED): State.STORED,
    (State.SENT, Event.ACKNOWLEDGED): State.DELIVERED,
    (State.STORED, Event.PUBLISHED): State.STORED,
    (State.STORED, Event.ATTEMPT_FAILED): State.STORED,
    (State.STORED, Event.BUDGET_SPENT): State.FAILED,
    (State.STORED, Event.REJECTED): State.FAILED,
    (State.STORED, Event.STORE_CONFIRMED): State.STORED,
    (State.STORED, Event.ACKNOWLEDGED): State.DELIVERED,
    (State.FAILED, Event.ACKNOWLEDGED): State.DELIVERED,
    # noted as evidence; still needs the user or an ack
    (State.FAILED, Event.STORE_CONFIRMED): State.FAILED,
    (State.FAILED, Event.RETRY_REQUESTED): State.QUEUED,
    (State.DELIVERED, Event.ACKNOWLEDGED): State.DELIVERED,  # duplicate acks are harmless
    (State.DELIVERED, Event.STORE_CONFIRMED): State.DELIVERED,
    # outcomes of an attempt the ack overtook: noted, nothing to do
    (State.DELIVERED, Event.PUBLISHED): State.DELIVERED,
    (State.DELIVERED, Event.ATTEMPT_FAILED): State.DELIVERED,
    (State.DELIVERED, Event.REJECTED): State.DELIVERED,
}

ACTIVE_STATES = frozenset({State.QUEUED, State.SENT, State.STORED})
"""States in which the outbox still works on a message."""


class OutboxError(Exception):
    pass


class NoPeersNow(OutboxError):
    """A manual retry of a pending message while no peer is reachable: nothing changed."""

    def __init__(self) -> None:
        super().__init__(
            "there is no peer to send it to right now: it goes as soon as chinwag "
            "reconnects, and its attempts and schedule are unchanged"
        )


class InvalidTransition(OutboxError):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value} is not possible for a {state.value} message")
        self.state = state
        self.event = event


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Two exponential backoffs with jitter: one to get a queued message onto the network,
    one to re-send a sent message until the recipient acknowledges it."""

    max_attempts: int = 8
    """Attempts to get a queued message onto the network."""
    first_delay: float = 10.0
    factor: float = 2.0
    max_delay: float = 30 * 60.0
    jitter: float = 0.1
    ack_timeout: float = 60.0
    """How long a sent message waits for its acknowledgement before the first re-send."""
    max_resends: int = 12
    """Re-sends of a sent message before it fails for want of an acknowledgement."""
    max_resend_delay: float = 3600.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Delay after queued attempt number `attempt` (1-based) before the next one."""
        base = min(self.max_delay, self.first_delay * self.factor ** max(0, attempt - 1))
        return self._jittered(base, rng)

    def resend_delay(self, resends: int, rng: random.Random) -> float:
        """Wait for the acknowledgement after a message was sent and re-sent `resends` times."""
        base = min(self.max_resend_delay, self.ack_timeout * self.factor ** max(0, resends))
        return self._jittered(base, rng)

    def _jittered(self, base: float, rng: random.Random) -> float:
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
    state: State = State.QUEUED
    attempts: int = 0
    """Every attempt ever made (the trace); the budgets below count since the last retry."""
    max_attempts: int = 8
    queued_attempts: int = 0
    """Attempts while queued, against max_attempts."""
    resends: int = 0
    """Re-sends while sent or stored, against max_resends."""
    max_resends: int = 12
    next_attempt_at: float | None = None
    in_flight: bool = False
    """An attempt has started and its outcome is not reported yet (never persisted as true)."""
    reason: str | None = None
    history: list[Transition] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.state in ACTIVE_STATES

    def budget(self) -> tuple[str, int, int]:
        """The budget the message spends now and how much of it is used: ("attempt", n, max)
        to get it onto the network, ("re-send", n, max) waiting for its acknowledgement.
        n never exceeds max (the message fails when it is spent)."""
        if self.state in (State.SENT, State.STORED) or self.resends:
            return ("re-send", min(self.resends, self.max_resends), self.max_resends)
        return ("attempt", min(self.queued_attempts, self.max_attempts), self.max_attempts)


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
            (e for e in self._entries.values() if e.state is not State.DELIVERED),
            key=lambda e: e.created_at,
        )

    def due(self, now: float) -> list[OutboxEntry]:
        """Messages whose next attempt is due, oldest first (never one under way)."""
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
            max_resends=self.policy.max_resends,
            next_attempt_at=now,
        )
        self._entries[message_id] = entry
        created = Transition(message_id, None, State.QUEUED, Event.ENQUEUED, now, {})
        entry.history.append(created)
        return created

    def restore(self, entry: OutboxEntry) -> None:
        """Load an entry read back from storage. An attempt cannot outlive the process that
        made it: one that was under way is due again at once."""
        if entry.pending and (entry.in_flight or entry.next_attempt_at is None):
            entry.next_attempt_at = entry.history[-1].at if entry.history else entry.created_at
        entry.in_flight = False
        self._entries[entry.message_id] = entry

    def discard(self, message_id: str) -> OutboxEntry:
        """The user gave up on a message: forget it (the caller records that). A result
        that arrives for it later is refused with OutboxError."""
        entry = self.get(message_id)
        del self._entries[message_id]
        return entry

    def attempt_started(self, message_id: str) -> int:
        """Counts an attempt; returns its number. The caller then reports its outcome."""
        entry = self.get(message_id)
        if entry.state is State.DELIVERED:
            raise OutboxError("the message is already delivered, so there is nothing to send")
        if entry.state is State.FAILED:
            raise OutboxError("the message has failed; retry it before sending it again")
        if entry.in_flight:
            raise OutboxError("an attempt to send the message is already under way")
        entry.attempts += 1
        if entry.state is State.QUEUED:
            entry.queued_attempts += 1
        else:
            entry.resends += 1
        entry.in_flight = True
        entry.next_attempt_at = None
        return entry.attempts

    def published(self, message_id: str, now: float, **evidence: Any) -> Transition:
        entry = self._attempt_ended(message_id)
        transition = self._apply(entry, Event.PUBLISHED, now, evidence)
        if entry.state in (State.SENT, State.STORED):
            entry.reason = None
            entry.next_attempt_at = now + self.policy.resend_delay(entry.resends, self._rng)
        return transition

    def attempt_failed(
        self, message_id: str, now: float, reason: str, **evidence: Any
    ) -> Transition:
        entry = self._attempt_ended(message_id)
        if entry.state is State.DELIVERED:
            return self._apply(entry, Event.ATTEMPT_FAILED, now, {"reason": reason, **evidence})
        if entry.state is State.QUEUED and entry.queued_attempts >= entry.max_attempts:
            return self._fail(entry, now, reason, evidence)
        if entry.state is not State.QUEUED and entry.resends >= entry.max_resends:
            return self._fail(
                entry, now, f"{self._no_ack(entry)} (last re-send: {reason})", evidence
            )
        transition = self._apply(entry, Event.ATTEMPT_FAILED, now, {"reason": reason, **evidence})
        entry.reason = reason
        if entry.state is State.QUEUED:
            entry.next_attempt_at = now + self.policy.delay(entry.queued_attempts, self._rng)
        else:
            entry.next_attempt_at = now + self.policy.resend_delay(entry.resends, self._rng)
        return transition

    def ack_overdue(self, message_id: str, now: float) -> Transition | None:
        """Called when a sent/stored message is due again: fails it when the re-send budget
        is spent (the caller re-sends it otherwise). Never before it is due."""
        entry = self.get(message_id)
        due = entry.next_attempt_at is not None and entry.next_attempt_at <= now
        if entry.state in (State.SENT, State.STORED) and due and entry.resends >= entry.max_resends:
            return self._fail(entry, now, self._no_ack(entry), {})
        return None

    def rejected(self, message_id: str, now: float, reason: str, **evidence: Any) -> Transition:
        entry = self._attempt_ended(message_id)
        was = entry.state
        transition = self._apply(entry, Event.REJECTED, now, {"reason": reason, **evidence})
        if entry.state is State.FAILED:
            entry.reason = reason if was is State.QUEUED else f"a re-send was refused: {reason}"
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

    def retry(self, message_id: str, now: float, *, peers: bool = True) -> Transition | None:
        """Manual retry: a failed message is queued with fresh budgets; a pending one is
        simply made due now. Returns the transition when the state changed.

        `peers=False`: no peer is reachable, so nothing is attempted now. A failed message
        is still queued with fresh budgets, its first attempt on the ordinary schedule (or
        sooner, when peers return); a pending one is left as it was: NoPeersNow."""
        entry = self.get(message_id)
        if entry.state is State.DELIVERED:
            raise OutboxError("a delivered message cannot be retried")
        if entry.in_flight:
            raise OutboxError("the message is being sent right now; wait for the outcome")
        if entry.state is State.FAILED:
            evidence = {"by": "user"} if peers else {"by": "user", "peers": 0}
            transition = self._apply(entry, Event.RETRY_REQUESTED, now, evidence)
            entry.queued_attempts = entry.resends = 0
            entry.max_attempts = self.policy.max_attempts
            entry.max_resends = self.policy.max_resends
            entry.reason = None if peers else "no peers"
            entry.next_attempt_at = now if peers else now + self.policy.delay(0, self._rng)
            return transition
        if not peers:
            raise NoPeersNow()
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
            {"reason": reason, "attempts": entry.attempts, "resends": entry.resends, **evidence},
        )
        entry.reason = reason
        entry.next_attempt_at = None
        return transition

    def _attempt_ended(self, message_id: str) -> OutboxEntry:
        entry = self.get(message_id)
        if not entry.in_flight:
            raise OutboxError("no attempt to send the message is under way to report on")
        entry.in_flight = False
        return entry

    @staticmethod
    def _no_ack(entry: OutboxEntry) -> str:
        return f"no acknowledgement from the recipient after {entry.resends} re-sends"

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


# ---- persistence -------------------------------------------------------------------------
# The transitions themselves are stored as the message's state history; this is the rest.
def entry_to_json(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "conversation_id": entry.conversation_id,
        "created_at": entry.created_at,
        "state": entry.state.value,
        "attempts": entry.attempts,
        "max_attempts": entry.max_attempts,
        "queued_attempts": entry.queued_attempts,
        "resends": entry.resends,
        "max_resends": entry.max_resends,
        "next_attempt_at": entry.next_attempt_at,
        "reason": entry.reason,
    }


def entry_from_json(message_id: str, data: dict[str, Any]) -> OutboxEntry:
    """Raises OutboxError for data this version cannot read."""
    try:
        next_at = data["next_attempt_at"]
        return OutboxEntry(
            message_id,
            str(data["conversation_id"]),
            created_at=float(data["created_at"]),
            state=State(data["state"]),
            attempts=int(data["attempts"]),
            max_attempts=int(data["max_attempts"]),
            queued_attempts=int(data["queued_attempts"]),
            resends=int(data["resends"]),
            max_resends=int(data["max_resends"]),
            next_attempt_at=None if next_at is None else float(next_at),
            reason=data.get("reason"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OutboxError(f"unreadable outbox entry for {message_id}: {exc}") from None
