from __future__ import annotations

import itertools
import random

import pytest

from chat.reliability.outbox import (
    TRANSITIONS,
    Event,
    InvalidTransition,
    Outbox,
    OutboxEntry,
    OutboxError,
    RetryPolicy,
    State,
)

POLICY = RetryPolicy(max_attempts=4, first_delay=10, factor=2, max_delay=35, jitter=0.1)


def _outbox() -> Outbox:
    return Outbox(POLICY, random.Random(1))


def test_happy_path_records_every_transition_with_evidence() -> None:
    box = _outbox()
    box.enqueue("m1", "chat-a", now=0)
    assert [e.message_id for e in box.due(0)] == ["m1"]
    assert box.attempt_started("m1") == 1
    box.published("m1", 1, peers=3, via="relay")
    box.store_confirmed("m1", 2, store_node="16Uiu2…", hash="ab" * 32)
    box.acknowledged("m1", 3, by="history", sender="bob")
    entry = box.get("m1")
    assert entry.state is State.DELIVERED and not entry.pending
    assert [(t.old, t.new, t.at) for t in entry.history] == [
        (None, State.QUEUED, 0),
        (State.QUEUED, State.SENT, 1),
        (State.SENT, State.STORED, 2),
        (State.STORED, State.DELIVERED, 3),
    ]
    assert entry.history[1].evidence == {"peers": 3, "via": "relay"}
    assert entry.history[3].evidence["by"] == "history"
    assert box.pending() == [] and box.next_wakeup() is None


def test_transient_failures_back_off_then_fail_with_the_last_reason() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    now = 0.0
    delays = []
    for attempt in range(1, POLICY.max_attempts + 1):
        (due,) = box.due(now)
        assert box.attempt_started(due.message_id) == attempt
        box.attempt_failed("m1", now, reason="no relay peers")
        entry = box.get("m1")
        if attempt < POLICY.max_attempts:
            assert entry.state is State.QUEUED and entry.reason == "no relay peers"
            assert entry.next_attempt_at is not None
            delays.append(entry.next_attempt_at - now)
            assert box.due(entry.next_attempt_at - 0.001) == []
            now = entry.next_attempt_at
    for delay, base in zip(delays, [10, 20, 35], strict=True):  # capped at max_delay
        assert base * 0.9 <= delay <= base * 1.1
    entry = box.get("m1")
    assert entry.state is State.FAILED and entry.reason == "no relay peers"
    assert entry.history[-1].evidence["attempts"] == POLICY.max_attempts


def test_permanent_rejection_fails_at_once_and_manual_retry_requeues() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.rejected("m1", 1, reason="message too large (200000 bytes)")
    entry = box.get("m1")
    assert entry.state is State.FAILED and entry.next_attempt_at is None
    box.retry("m1", now=50)
    assert entry.state is State.QUEUED and entry.next_attempt_at == 50
    assert entry.max_attempts == entry.attempts + POLICY.max_attempts
    assert entry.history[-1].evidence == {"by": "user"}


def test_unacknowledged_messages_are_resent_then_fail_but_a_late_ack_delivers() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    now = 0.0
    for _ in range(POLICY.max_attempts):
        assert [e.message_id for e in box.due(now)] == ["m1"]
        assert box.ack_overdue("m1", now) is None
        box.attempt_started("m1")
        box.published("m1", now, peers=2)
        next_at = box.get("m1").next_attempt_at
        assert next_at == now + POLICY.ack_timeout
        now = next_at
    failed = box.ack_overdue("m1", now)
    assert failed is not None and failed.new is State.FAILED
    assert box.get("m1").reason == "no acknowledgement from the recipient after 4 attempts"
    box.acknowledged("m1", now + 1000, by="bloom")
    assert box.get("m1").state is State.DELIVERED


def test_hours_of_retries_run_in_no_time() -> None:
    box = Outbox(RetryPolicy(max_attempts=50, max_delay=3600), random.Random(3))
    box.enqueue("m1", "c", now=0)
    now = 0.0
    while box.get("m1").pending:
        wake = box.next_wakeup()
        assert wake is not None and wake >= now
        now = wake
        box.attempt_started("m1")
        box.attempt_failed("m1", now, reason="offline")
    assert now > 24 * 3600
    assert box.get("m1").attempts == 50


def test_every_pair_missing_from_the_table_is_refused() -> None:
    for state, event in itertools.product(State, Event):
        if (state, event) in TRANSITIONS or event is Event.ENQUEUED:
            continue
        box = _outbox()
        box.restore(OutboxEntry("m", "c", created_at=0, state=state))
        with pytest.raises(InvalidTransition):
            Outbox._apply(box.get("m"), event, 1, {})


def test_delivered_cannot_be_retried_and_unknown_ids_are_errors() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.acknowledged("m1", 1)
    with pytest.raises(OutboxError):
        box.retry("m1", 2)
    with pytest.raises(OutboxError):
        box.get("nope")


def test_enqueue_is_idempotent_and_discard_forgets() -> None:
    box = _outbox()
    first = box.enqueue("m1", "c", now=0)
    assert box.enqueue("m1", "c", now=5) is first
    assert len(box.get("m1").history) == 1
    box.discard("m1")
    assert "m1" not in box
