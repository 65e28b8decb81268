"""Withdrawals kept until their request comes (chat/early_withdrawals.py): matched by sender
and request id only, taken once, forgotten after a while, and bounded in number."""

from __future__ import annotations

from chat.early_withdrawals import EarlyWithdrawals

ALICE = b"a" * 32
MALLORY = b"m" * 32


def test_a_withdrawal_matches_only_its_sender_s_request_with_that_id_once() -> None:
    early = EarlyWithdrawals()
    early.add(ALICE, "18c-01", 0.0)
    assert not early.take(MALLORY, "18c-01", 1.0)  # someone else's request with that id
    assert not early.take(ALICE, "18c-02", 1.0)  # her other request
    assert early.take(ALICE, "18c-01", 1.0)
    assert not early.take(ALICE, "18c-01", 2.0)  # taken once
    assert len(early) == 0


def test_withdrawals_are_forgotten_after_a_while() -> None:
    early = EarlyWithdrawals(keep_for=100.0)
    early.add(ALICE, "18c-01", 0.0)
    early.add(ALICE, "18c-02", 50.0)
    assert not early.take(ALICE, "18c-01", 100.0)
    assert len(early) == 1 and early.take(ALICE, "18c-02", 149.0)


def test_at_most_so_many_are_kept_the_oldest_forgotten_first() -> None:
    early = EarlyWithdrawals(max_entries=3)
    for n in range(5):
        early.add(MALLORY, f"id-{n}", float(n))
    assert len(early) == 3
    assert not early.take(MALLORY, "id-0", 5.0) and not early.take(MALLORY, "id-1", 5.0)
    assert early.take(MALLORY, "id-4", 5.0)


def test_an_id_that_is_not_one_is_not_kept() -> None:
    early = EarlyWithdrawals()
    early.add(ALICE, "x" * 65, 0.0)
    early.add(ALICE, "", 0.0)
    early.add(ALICE, "bad id\n", 0.0)
    assert len(early) == 0
