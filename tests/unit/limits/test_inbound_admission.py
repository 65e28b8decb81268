"""Which inbound connections the listener keeps (sans-IO, time injected): pending ones are
limited per source and in total, the idle evicted first and oldest first, a handshake in
progress is protected for its grace, silence is cut short while slow handshakes keep their
30 s, and one source may hold only so many open connections."""

from __future__ import annotations

import pytest

from chat.waku.inbound_limits import (
    SHEDS,
    InboundAdmission,
    InboundConnection,
    InboundLimits,
    Outcome,
    Phase,
)

LIMITS = InboundLimits(
    max_pending=4,
    max_pending_per_source=2,
    max_open_per_source=2,
    first_bytes_timeout=5.0,
    handshake_timeout=30.0,
    grace=1.0,
)


def accept(admission: InboundAdmission, source: str, now: float) -> InboundConnection:
    arrival = admission.arrive(source, now)
    assert arrival.connection is not None, arrival
    return arrival.connection


def test_a_new_connection_evicts_the_oldest_idle_one_of_its_source() -> None:
    admission = InboundAdmission(LIMITS)
    first = accept(admission, "10.0.0.1", 0.0)
    second = accept(admission, "10.0.0.1", 0.1)
    arrival = admission.arrive("10.0.0.1", 0.2)
    assert arrival.connection is not None
    assert arrival.evicted == (first,)
    assert first.done and not second.done
    assert admission.pending_from("10.0.0.1") == 2
    assert admission.counts[Outcome.EVICTED_SOURCE] == 1


def test_idle_connections_go_before_a_handshake_in_progress() -> None:
    admission = InboundAdmission(LIMITS)
    dialer = accept(admission, "10.0.0.1", 0.0)
    admission.first_bytes(dialer)  # a real dialer speaks at once
    idle = accept(admission, "10.0.0.1", 0.5)
    arrival = admission.arrive("10.0.0.1", 5.0)  # the dialer is older, but not idle
    assert arrival.evicted == (idle,)
    assert not dialer.done


def test_a_young_handshake_is_not_evicted_the_newcomer_is_refused() -> None:
    admission = InboundAdmission(LIMITS)
    for at in (0.0, 0.1):
        admission.first_bytes(accept(admission, "10.0.0.1", at))
    arrival = admission.arrive("10.0.0.1", 0.5)  # both within their 1 s grace
    assert arrival.connection is None and arrival.refused is Outcome.REFUSED_PENDING
    # Past its grace, a stalled handshake is fair game, oldest first.
    later = admission.arrive("10.0.0.1", 1.05)
    assert later.connection is not None and later.evicted[0].accepted_at == 0.0


def test_at_the_total_limit_the_source_holding_most_pays() -> None:
    admission = InboundAdmission(LIMITS)
    a1 = accept(admission, "10.0.0.1", 0.0)
    accept(admission, "10.0.0.1", 0.1)
    b1 = accept(admission, "10.0.0.2", 0.05)
    accept(admission, "10.0.0.3", 0.2)
    assert admission.pending == 4
    arrival = admission.arrive("10.0.0.4", 0.3)
    assert arrival.connection is not None
    assert arrival.evicted == (a1,)  # 10.0.0.1 holds two; its oldest idle goes
    assert not b1.done
    assert admission.counts[Outcome.EVICTED_TOTAL] == 1


def test_silence_is_cut_short_but_a_slow_handshake_keeps_its_time() -> None:
    admission = InboundAdmission(LIMITS)
    silent = accept(admission, "10.0.0.1", 0.0)
    slow = accept(admission, "10.0.0.2", 0.0)
    assert admission.deadline(silent) == 5.0
    admission.first_bytes(slow)
    assert admission.deadline(slow) == 30.0
    admission.timed_out(silent)
    admission.timed_out(slow)
    assert admission.counts[Outcome.FIRST_BYTES_TIMEOUT] == 1
    assert admission.counts[Outcome.HANDSHAKE_TIMEOUT] == 1
    assert admission.pending == 0


def test_open_connections_are_limited_per_source_and_never_evicted() -> None:
    admission = InboundAdmission(LIMITS)
    opened = []
    for at in (0.0, 0.1):
        connection = accept(admission, "10.0.0.1", at)
        admission.first_bytes(connection)
        assert admission.upgraded(connection)
        opened.append(connection)
    assert admission.deadline(opened[0]) is None and opened[0].phase is Phase.OPEN
    refused = admission.arrive("10.0.0.1", 1.0)
    assert refused.connection is None and refused.refused is Outcome.REFUSED_SOURCE_OPEN
    assert admission.arrive("10.0.0.2", 1.0).connection is not None  # others still come in
    admission.closed(opened[0])
    assert admission.arrive("10.0.0.1", 2.0).connection is not None


def test_an_evicted_connection_is_counted_once_whatever_happens_to_it_next() -> None:
    admission = InboundAdmission(LIMITS)
    first = accept(admission, "10.0.0.1", 0.0)
    accept(admission, "10.0.0.1", 0.1)
    admission.arrive("10.0.0.1", 0.2)
    admission.failed(first)  # its handshake then fails: not a second outcome
    admission.timed_out(first)
    assert not admission.upgraded(first)
    assert sum(admission.counts[o] for o in SHEDS) == 1
    assert admission.counts[Outcome.FAILED] == 0


def test_a_failed_handshake_frees_its_slot() -> None:
    admission = InboundAdmission(LIMITS)
    connection = accept(admission, "10.0.0.1", 0.0)
    admission.failed(connection)
    assert admission.pending == 0 and admission.counts[Outcome.FAILED] == 1


@pytest.mark.parametrize("field", ["max_pending", "max_pending_per_source", "first_bytes_timeout"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        InboundLimits(**{field: 0})  # type: ignore[arg-type]
