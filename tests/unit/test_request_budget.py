"""The budget for strangers' contact requests, sans-IO (chat/request_budget.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat.request_budget import DropReason, StrangerBudget, StrangerPolicy, TokenBucket


def test_the_bucket_admits_a_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=0.5, burst=3, now=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(1.9)
    assert bucket.take(2.0)  # one token in 2 s
    assert [bucket.take(100) for _ in range(4)] == [True, True, True, False]  # never over burst


def test_the_bucket_refills_again_soon_after_the_clock_steps_back() -> None:
    # The messenger's clock is the wall clock: a step back (NTP, a VM resumed) must not
    # stop the refill until the clock is back where it was (an hour without a request).
    bucket = TokenBucket(rate=0.5, burst=1, now=10_000.0)
    assert bucket.take(10_000.0) and not bucket.take(10_000.0)
    assert not bucket.take(6_400.0)  # an hour back
    assert bucket.take(6_402.0)  # one token in 2 s, as before the step


def test_over_the_rate_is_dropped_and_counted() -> None:
    budget = StrangerBudget(StrangerPolicy(rate=1.0, burst=2))
    admitted = [budget.admit(0.0) for _ in range(10)]
    assert admitted.count(True) == 2
    assert budget.dropped == budget.dropped_by_reason[DropReason.RATE] == 8


def test_the_cap_drops_closed_requests_first_then_the_oldest_open_ones() -> None:
    budget = StrangerBudget(StrangerPolicy(max_held=3))
    assert budget.hold("a", is_open=True) == []
    assert budget.hold("b", is_open=True) == []
    assert budget.hold("c", is_open=False) == []  # withdrawn or expired
    assert budget.hold("d", is_open=True) == ["c"]
    assert budget.hold("e", is_open=True) == ["a"]
    assert budget.hold("b", is_open=False) == []  # b closes: it goes first next
    assert budget.hold("f", is_open=True) == ["b"]
    assert len(budget) == 3 and budget.dropped_by_reason[DropReason.CAP] == 3
    budget.release("d")  # answered: no longer a stranger's request
    assert not budget.holds("d") and len(budget) == 2


def test_drops_are_reported_at_most_every_few_seconds_with_the_total() -> None:
    budget = StrangerBudget(StrangerPolicy(rate=0.0, burst=0, report_every=5.0))
    budget.restore(40)  # kept in the profile: nothing new to report
    assert budget.next_report_at() is None and budget.report(0.0) is None
    budget.admit(10.0)
    assert budget.report(10.0) == 41  # the first at once
    budget.admit(11.0)
    budget.shed()
    assert budget.next_report_at() == 15.0 and budget.report(14.9) is None
    assert budget.report(15.0) == 43
    assert budget.next_report_at() is None


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.booleans(), st.booleans()), max_size=60))
def test_the_cap_holds_and_every_drop_is_counted(steps: list[tuple[str, bool, bool]]) -> None:
    budget = StrangerBudget(StrangerPolicy(max_held=4))
    held: set[str] = set()
    dropped = 0
    for key, is_open, answer in steps:
        if answer:
            budget.release(key)
            held.discard(key)
            continue
        gone = budget.hold(key, is_open=is_open)
        held = (held | {key}) - set(gone)
        dropped += len(gone)
        assert len(budget) == len(held) <= 4
        assert key not in gone or not is_open  # a new open request is never its own victim
    assert budget.dropped == dropped
