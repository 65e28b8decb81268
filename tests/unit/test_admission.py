"""chat.waku.admission: connection slots by source, shedding the longest waiting, refusing when
every slot that could make room is busy, and reports that cannot flood a log."""

from __future__ import annotations

import pytest

from chat.waku.admission import REPORT_INTERVAL, Admission, AdmissionError, AdmissionLimits, Report


def _admit(admission: Admission, source: str) -> int:
    admitted = admission.admit(source)
    assert admitted is not None and admitted.shed is None
    return admitted.ticket


def test_free_slots_are_taken_and_released() -> None:
    admission = Admission(AdmissionLimits(total=3, per_source=2))
    first, second = _admit(admission, "a"), _admit(admission, "a")
    third = _admit(admission, "b")
    assert (admission.open, admission.open_from("a"), admission.open_from("b")) == (3, 2, 1)
    admission.release(first)
    admission.release(first)  # twice is harmless
    assert (admission.open, admission.open_from("a")) == (2, 1)
    admission.release(second)
    admission.release(third)
    assert admission.open == 0 and admission.open_from("a") == 0


def test_a_full_source_sheds_its_own_longest_waiting_connection() -> None:
    admission = Admission(AdmissionLimits(total=10, per_source=3))
    old, middle, _ = (_admit(admission, "a") for _ in range(3))
    _admit(admission, "b")
    admission.waiting(old)  # it waited again after a request: now the newest waiting one
    admitted = admission.admit("a")
    assert admitted is not None and admitted.shed == middle
    assert admission.open_from("a") == 3 and admission.shed == 1
    assert admission.open_from("b") == 1  # never touched for another source's sake


def test_busy_connections_are_never_shed_and_the_newcomer_is_refused() -> None:
    admission = Admission(AdmissionLimits(total=10, per_source=2))
    tickets = [_admit(admission, "a") for _ in range(2)]
    for ticket in tickets:
        admission.busy(ticket)
    assert admission.admit("a") is None
    assert admission.refused == 1
    admission.waiting(tickets[1])  # its request is answered: it waits for the next one
    admitted = admission.admit("a")
    assert admitted is not None and admitted.shed == tickets[1]


def test_a_full_server_sheds_the_longest_waiting_of_any_source() -> None:
    admission = Admission(AdmissionLimits(total=3, per_source=3))
    a = _admit(admission, "a")
    b = _admit(admission, "b")
    c = _admit(admission, "c")
    admission.busy(a)
    admitted = admission.admit("d")
    assert admitted is not None and admitted.shed == b
    assert admission.open == 3 and admission.open_from("b") == 0
    admission.busy(c)
    admission.busy(admitted.ticket)
    assert admission.admit("e") is None


def test_reports_come_at_once_then_at_most_once_per_interval() -> None:
    admission = Admission(AdmissionLimits(total=1, per_source=1))
    assert admission.report(0.0) is None  # nothing happened
    busy = _admit(admission, "a")
    admission.busy(busy)
    assert admission.admit("a") is None
    assert admission.report(1.0) == Report(shed=0, refused=1)
    assert admission.admit("b") is None
    assert admission.report(2.0) is None  # too soon
    assert admission.report(1.0 + REPORT_INTERVAL) == Report(shed=0, refused=1)
    assert admission.report(10 * REPORT_INTERVAL) is None  # nothing new


@pytest.mark.parametrize(("total", "per_source"), [(0, 0), (2, 3), (5, 0)])
def test_limits_that_cannot_work_are_refused(total: int, per_source: int) -> None:
    with pytest.raises(AdmissionError):
        AdmissionLimits(total, per_source)
