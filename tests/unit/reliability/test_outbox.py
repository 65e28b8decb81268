from __future__ import annotations

import random

import pytest

from chat.reliability.outbox import (
    TRANSITIONS,
    Event,
    InvalidTransition,
    NoPeersNow,
    Outbox,
    OutboxError,
    RetryPolicy,
    State,
    Transition,
)

POLICY = RetryPolicy(
    max_attempts=4,
    first_delay=10,
    factor=2,
    max_delay=35,
    jitter=0.1,
    ack_timeout=60,
    max_resends=5,
    max_resend_delay=300,
)


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
    assert entry.queued_attempts == 0 and entry.resends == 0  # a fresh budget
    assert entry.history[-1].evidence == {"by": "user"}


def test_unacknowledged_messages_are_resent_with_backoff_then_fail_but_a_late_ack_delivers() -> (
    None
):
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.published("m1", 0, peers=2)
    now, delays = 0.0, []
    while True:
        next_at = box.get("m1").next_attempt_at
        assert next_at is not None
        assert box.ack_overdue("m1", next_at - 0.001) is None  # not due yet: never early
        delays.append(next_at - now)
        now = next_at
        if (failed := box.ack_overdue("m1", now)) is not None:
            break
        box.attempt_started("m1")
        box.published("m1", now, peers=2)
    assert failed.new is State.FAILED
    # first re-send after the ack timeout, then doubling up to the cap; the last delay is the
    # wait after the last re-send
    bases = [60, 120, 240, 300, 300, 300]
    assert len(delays) == POLICY.max_resends + 1 == len(bases)
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.9 <= delay <= base * 1.1
    entry = box.get("m1")
    assert entry.reason == "no acknowledgement from the recipient after 5 re-sends"
    assert entry.attempts == 6 and entry.resends == 5
    box.acknowledged("m1", now + 1000, by="bloom")
    assert box.get("m1").state is State.DELIVERED


def test_default_policy_waits_about_eight_hours_for_an_acknowledgement() -> None:
    policy, rng = RetryPolicy(jitter=0), random.Random(0)
    waits = [policy.resend_delay(n, rng) for n in range(policy.max_resends + 1)]
    assert waits[:3] == [60, 120, 240] and max(waits) == 3600
    assert 7.5 * 3600 < sum(waits) < 8.5 * 3600


def test_a_failed_re_send_keeps_the_message_sent_and_counts_toward_the_ack_budget() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.published("m1", 0)
    now = 0.0
    for resend in range(1, POLICY.max_resends + 1):
        next_at = box.get("m1").next_attempt_at
        assert next_at is not None
        now = next_at
        assert box.ack_overdue("m1", now) is None
        box.attempt_started("m1")
        box.attempt_failed("m1", now, reason="no relay peers")
        if resend < POLICY.max_resends:
            assert box.get("m1").state is State.SENT
    entry = box.get("m1")
    assert entry.state is State.FAILED and entry.next_attempt_at is None
    assert entry.reason == (
        "no acknowledgement from the recipient after 5 re-sends (last re-send: no relay peers)"
    )


def test_ack_during_an_in_flight_re_send_then_the_re_send_fails_stays_delivered() -> None:
    # Finding 6: a legitimate late result of a re-send must not blow up.
    for outcome in ("attempt_failed", "rejected", "published"):
        box = _outbox()
        box.enqueue("m1", "c", now=0)
        box.attempt_started("m1")
        box.published("m1", 0)
        box.attempt_started("m1")  # a re-send is under way ...
        box.acknowledged("m1", 61, by="history")  # ... when the recipient's ack arrives
        if outcome == "published":
            box.published("m1", 62, peers=1)
        else:
            getattr(box, outcome)("m1", 62, reason="no relay peers")
        entry = box.get("m1")
        assert entry.state is State.DELIVERED and entry.reason is None
        assert entry.next_attempt_at is None and not entry.pending
        last = entry.history[-1]
        assert (last.old, last.new) == (State.DELIVERED, State.DELIVERED)  # noted as evidence
        assert box.due(10_000) == []


def test_a_rejected_re_send_fails_the_message_but_a_late_ack_still_delivers() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.published("m1", 0, via="relay")
    box.store_confirmed("m1", 3)
    box.attempt_started("m1")
    box.rejected("m1", 60, reason="413 too large at this light push node")
    entry = box.get("m1")
    assert entry.state is State.FAILED and entry.next_attempt_at is None
    assert entry.reason == "a re-send was refused: 413 too large at this light push node"
    box.acknowledged("m1", 100)
    assert entry.state is State.DELIVERED


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


ERROR = "error"
Expected = State | str

# Every public command in every situation a message can be in, reached through the public
# API; "*" = an attempt is under way (started, its outcome not yet reported). A cell is the
# state after the command, or ERROR: an OutboxError with a sentence, never InvalidTransition.
COMMANDS = (
    "attempt_started",
    "published",
    "attempt_failed",
    "rejected",
    "store_confirmed",
    "acknowledged",
    "ack_overdue",
    "retry",
    "retry_without_peers",
)
Q, S, ST, D, F = State.QUEUED, State.SENT, State.STORED, State.DELIVERED, State.FAILED
SITUATIONS: dict[str, tuple[Expected, ...]] = {
    "queued": (Q, ERROR, ERROR, ERROR, ST, D, Q, Q, ERROR),
    "queued*": (ERROR, S, Q, F, ST, D, Q, ERROR, ERROR),
    "sent": (S, ERROR, ERROR, ERROR, ST, D, S, S, ERROR),
    "sent*": (ERROR, S, S, F, ST, D, S, ERROR, ERROR),
    "stored": (ST, ERROR, ERROR, ERROR, ST, D, ST, ST, ERROR),
    "stored*": (ERROR, ST, ST, F, ST, D, ST, ERROR, ERROR),
    "delivered": (ERROR, ERROR, ERROR, ERROR, D, D, D, ERROR, ERROR),
    "delivered*": (ERROR, D, D, D, D, D, D, ERROR, ERROR),
    "failed": (ERROR, ERROR, ERROR, ERROR, F, D, F, Q, Q),
}


def _reach(situation: str) -> Outbox:
    box = _outbox()
    box.enqueue("m", "c", now=0)
    steps = {
        "queued": [],
        "queued*": ["start"],
        "sent": ["start", "published"],
        "sent*": ["start", "published", "start"],
        "stored": ["start", "published", "stored"],
        "stored*": ["start", "published", "stored", "start"],
        "delivered": ["start", "published", "ack"],
        "delivered*": ["start", "published", "start", "ack"],
        "failed": ["start", "rejected"],
    }[situation]
    for step in steps:
        if step == "start":
            box.attempt_started("m")
        elif step == "published":
            box.published("m", 1, peers=1)
        elif step == "stored":
            box.store_confirmed("m", 2)
        elif step == "ack":
            box.acknowledged("m", 3)
        else:
            box.rejected("m", 1, reason="too large")
    return box


def _run(box: Outbox, command: str) -> None:
    now = 100_000.0  # later than any scheduled time
    if command == "attempt_started":
        box.attempt_started("m")
    elif command in ("attempt_failed", "rejected"):
        getattr(box, command)("m", now, reason="no relay peers")
    elif command == "retry_without_peers":
        box.retry("m", now, peers=False)
    else:
        getattr(box, command)("m", now)


@pytest.mark.parametrize("situation", SITUATIONS)
def test_every_public_command_in_every_situation(situation: str) -> None:
    for command, expected in zip(COMMANDS, SITUATIONS[situation], strict=True):
        box = _reach(situation)
        history = len(box.get("m").history)
        if expected == ERROR:
            with pytest.raises(OutboxError) as refused:
                _run(box, command)
            assert not isinstance(refused.value, InvalidTransition), (situation, command)
            assert len(str(refused.value).split()) >= 4, str(refused.value)
            assert len(box.get("m").history) == history  # a refusal changes nothing
        else:
            _run(box, command)
            assert box.get("m").state is expected, (situation, command)
        entry = box.get("m")
        if entry.pending and not entry.in_flight:
            assert entry.next_attempt_at is not None, (situation, command)  # never stranded


def test_every_table_row_is_reachable_and_documented() -> None:
    reached = {
        (t.old, t.event)
        for situation in SITUATIONS
        for command in COMMANDS
        for t in _history_after(situation, command)
        if t.old is not None
    }
    assert reached >= set(TRANSITIONS) - {
        (Q, Event.BUDGET_SPENT),
        (S, Event.BUDGET_SPENT),
        (ST, Event.BUDGET_SPENT),
    }


def _history_after(situation: str, command: str) -> list[Transition]:
    box = _reach(situation)
    try:
        _run(box, command)
    except OutboxError:
        pass
    return box.get("m").history


def test_results_for_a_discarded_message_are_refused_with_a_sentence() -> None:
    box = _outbox()
    box.enqueue("m", "c", now=0)
    box.attempt_started("m")
    box.discard("m")
    with pytest.raises(OutboxError, match="no message m in the outbox"):
        box.published("m", 1)


def test_an_attempt_interrupted_by_a_restart_is_due_again() -> None:
    box = _outbox()
    box.enqueue("m", "c", now=0)
    box.attempt_started("m")
    saved = box.get("m")
    restarted = _outbox()
    restarted.restore(saved)
    entry = restarted.get("m")
    assert not entry.in_flight and [e.message_id for e in restarted.due(1)] == ["m"]


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


# --- manual retries while no peer is reachable (issue 15 item 3) ---------------------------


def _failed_for_want_of_peers(box: Outbox) -> float:
    box.enqueue("m1", "c", now=0)
    now = 0.0
    while box.get("m1").state is State.QUEUED:
        box.attempt_started("m1")
        box.attempt_failed("m1", now, reason="no peers")
        now = box.get("m1").next_attempt_at or now
    return now


def test_a_manual_retry_without_peers_leaves_a_pending_message_exactly_as_it_was() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.attempt_failed("m1", 0, reason="no peers")
    entry = box.get("m1")
    before = (entry.queued_attempts, entry.attempts, entry.next_attempt_at, len(entry.history))
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):  # the user presses r again and again
        with pytest.raises(NoPeersNow, match="no peer to send it to right now"):
            box.retry("m1", now, peers=False)
    after = (entry.queued_attempts, entry.attempts, entry.next_attempt_at, len(entry.history))
    assert after == before and entry.budget() == ("attempt", 1, POLICY.max_attempts)


def test_a_failed_message_retried_without_peers_gets_a_fresh_budget_and_waits() -> None:
    box = _outbox()
    now = _failed_for_want_of_peers(box)
    entry = box.get("m1")
    assert entry.state is State.FAILED and entry.budget() == ("attempt", 4, 4)
    box.retry("m1", now, peers=False)
    assert entry.state is State.QUEUED and entry.budget() == ("attempt", 0, 4)
    assert entry.reason == "no peers" and entry.history[-1].evidence == {"by": "user", "peers": 0}
    # Not due now (an attempt would find no peer), but on the ordinary schedule.
    assert entry.next_attempt_at is not None
    assert 9.0 <= entry.next_attempt_at - now <= 11.0
    assert box.due(now) == []


def test_the_budget_shown_never_exceeds_its_size_across_manual_retries() -> None:
    """The outbox once showed "attempt 18 of 8": every attempt ever made, against a budget
    renewed by each manual retry."""
    box = _outbox()
    now = 0.0
    box.enqueue("m1", "c", now=0)
    for _ in range(5):  # fail for want of peers, retry by hand, fail again ...
        while box.get("m1").state is State.QUEUED:
            box.attempt_started("m1")
            box.attempt_failed("m1", now, reason="no peers")
            _, used, size = box.get("m1").budget()
            assert used <= size
            now = box.get("m1").next_attempt_at or now
        box.retry("m1", now)
    entry = box.get("m1")
    assert entry.attempts == 5 * POLICY.max_attempts  # the trace keeps every one
    assert entry.budget() == ("attempt", 0, POLICY.max_attempts)


def test_the_budget_of_a_sent_message_is_its_re_sends() -> None:
    box = _outbox()
    box.enqueue("m1", "c", now=0)
    box.attempt_started("m1")
    box.published("m1", 0)
    assert box.get("m1").budget() == ("re-send", 0, POLICY.max_resends)
    box.attempt_started("m1")
    box.published("m1", 60)
    assert box.get("m1").budget() == ("re-send", 1, POLICY.max_resends)
