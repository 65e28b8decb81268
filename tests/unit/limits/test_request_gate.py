"""The request gate's rules (sans-IO, time injected): open requests per peer and in total are
refused unread beyond their limits, the expensive part runs a few at a time in arrival order,
and a request that waited too long is shed."""

from __future__ import annotations

import pytest

from chat.waku.request_gate import GateLimits, RequestGate, Shed, Ticket

LIMITS = GateLimits(per_peer=3, total=5, running=2, running_per_peer=1, max_wait=10.0)


def admitted(gate: RequestGate, peer: str, now: float = 0.0) -> Ticket:
    ticket = gate.enter(peer, now)
    assert isinstance(ticket, Ticket), ticket
    return ticket


def test_a_busy_peer_and_a_full_server_are_refused_unread_and_counted() -> None:
    gate = RequestGate(LIMITS)
    for _ in range(3):
        admitted(gate, "a")
    assert gate.enter("a", 0.0) is Shed.PEER_BUSY
    admitted(gate, "b")
    admitted(gate, "c")
    assert gate.enter("d", 0.0) is Shed.SERVER_FULL
    assert gate.shed == {Shed.PEER_BUSY: 1, Shed.SERVER_FULL: 1}
    assert gate.open == 5


def test_the_expensive_part_runs_a_few_at_a_time_in_arrival_order() -> None:
    gate = RequestGate(LIMITS)
    a1, a2, b1, c1 = (admitted(gate, p) for p in ("a", "a", "b", "c"))
    assert gate.wait_turn(a1, 0.0)
    assert not gate.wait_turn(a2, 0.1)  # a already runs one: b may pass it
    assert gate.wait_turn(b1, 0.2)
    assert not gate.wait_turn(c1, 0.3)  # two run already
    assert (gate.running, gate.waiting) == (2, 2)
    # a1 ends: a2 (oldest waiting, and a runs nothing now) gets the turn before c1.
    assert gate.leave(a1) == [a2]
    assert gate.leave(b1) == [c1]
    assert gate.running == 2 and gate.waiting == 0


def test_leaving_frees_the_peer_and_the_server() -> None:
    gate = RequestGate(LIMITS)
    tickets = [admitted(gate, "a") for _ in range(3)]
    for ticket in tickets:
        gate.leave(ticket)
        gate.leave(ticket)  # twice is harmless
    assert gate.open == 0
    admitted(gate, "a")


def test_a_request_that_waited_too_long_is_shed_unless_it_got_its_turn() -> None:
    gate = RequestGate(LIMITS)
    a, b, c = (admitted(gate, p) for p in ("a", "b", "c"))
    assert gate.wait_turn(a, 0.0) and gate.wait_turn(b, 0.0)
    assert not gate.wait_turn(c, 1.0)
    assert LIMITS.deadline(1.0) == 11.0
    assert gate.give_up(c)
    assert gate.shed[Shed.WAITED_TOO_LONG] == 1 and gate.waiting == 0
    gate.leave(c)
    # One that got its turn at the last moment is not shed.
    d = admitted(gate, "d")
    assert not gate.wait_turn(d, 2.0)
    gate.leave(a)
    assert d.running and not gate.give_up(d)


def test_a_full_server_evicts_the_request_it_has_waited_for_longest_past_its_grace() -> None:
    limits = GateLimits(per_peer=3, total=3, running=2, running_per_peer=1, read_grace=1.0)
    gate = RequestGate(limits)
    working, silent, fresh = (admitted(gate, p) for p in ("a", "b", "c"))
    assert gate.wait_turn(working, 0.0)  # its request came: never evicted
    gate.reading(silent, 0.0)
    gate.reading(fresh, 0.5)
    assert gate.enter("d", 0.9) is Shed.SERVER_FULL  # nobody past the grace yet
    newcomer = admitted(gate, "d", 1.2)
    assert gate.take_evicted() == [silent] and silent.evicted and silent.left
    assert gate.take_evicted() == []
    assert gate.shed[Shed.NEVER_SENT] == 1 and gate.open == 3
    gate.read(fresh)  # its request came
    gate.reading(newcomer, 1.2)
    assert gate.enter("e", 2.0) is Shed.SERVER_FULL  # the newcomer is within its grace
    assert gate.leave(silent) == []  # its handler leaves too: harmless
    assert gate.open == 3


def test_a_ticket_that_left_cannot_ask_for_a_turn() -> None:
    gate = RequestGate(LIMITS)
    ticket = admitted(gate, "a")
    gate.leave(ticket)
    with pytest.raises(ValueError):
        gate.wait_turn(ticket, 0.0)


@pytest.mark.parametrize("field", ["per_peer", "total", "running", "running_per_peer"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        GateLimits(**{field: 0})  # type: ignore[arg-type]
