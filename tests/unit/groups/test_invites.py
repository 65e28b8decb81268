"""Group invitations as a request flow: the transition table, the visible re-send schedule,
expiry, and the failure of an invitation that reached nobody."""

from __future__ import annotations

import random

import pytest

from chat.groups.invites import (
    TRANSITIONS,
    Direction,
    InviteError,
    InviteEvent,
    InvitePolicy,
    Invites,
    InviteState,
    invite_from_json,
    invite_to_json,
)

POLICY = InvitePolicy(lifetime=1000.0, first_resend=10.0, factor=2.0, max_resend_delay=40.0,
                      jitter=0.0, max_unreached=3)  # fmt: skip
GROUP, BOB, INVITE = "g" * 32, "cw1bob", "i" * 32


def flows() -> Invites:
    return Invites(POLICY, random.Random(1))


def test_a_sent_invitation_goes_out_on_a_schedule_until_answered() -> None:
    invites = flows()
    invites.send(INVITE, GROUP, BOB, "Friends", expires_at=1000.0, now=0.0)
    invite = invites.get(INVITE)
    assert invite is not None and invite.state is InviteState.INVITED and invite.next_send_at == 0
    schedule = []
    for now in (0.0, 10.0, 30.0, 70.0, 110.0):
        resend, expired = invites.due(now)
        assert [i.id for i in resend] == [INVITE] and not expired
        invites.sent(INVITE, now, reached=True)
        schedule.append(invite.next_send_at)
    assert schedule == [10.0, 30.0, 70.0, 110.0, 150.0]  # 10, 20, 40, then capped at 40
    assert invites.next_wakeup() == 150.0
    done = invites.answered(INVITE, 120.0, accepted=True)
    assert (done.old, done.new) == (InviteState.INVITED, InviteState.JOINED)
    assert invite.next_send_at is None and invites.next_wakeup() is None
    assert invite.sends == 5 and invite.reached == 5


def test_an_invitation_that_reaches_nobody_fails_with_a_reason_and_can_go_again() -> None:
    invites = flows()
    invites.send(INVITE, GROUP, BOB, "Friends", expires_at=1000.0, now=0.0)
    assert invites.sent(INVITE, 0.0, reached=False, reason="no peers") is None
    invites.sent(INVITE, 10.0, reached=False, reason="no peers")
    failed = invites.sent(INVITE, 30.0, reached=False, reason="no peers")
    invite = invites.get(INVITE)
    assert failed is not None and failed.new is InviteState.FAILED and invite is not None
    assert invite.reason == "the invitation reached nobody in 3 sends: no peers"
    assert invites.due(10_000.0) == ([], []) and invites.next_wakeup() is None
    assert invites.open_for(GROUP, BOB) is invite
    again = invites.send(INVITE, GROUP, BOB, "Friends", expires_at=2000.0, now=40.0)
    assert (again.old, again.new) == (InviteState.FAILED, InviteState.INVITED)
    assert invite.sends == 0 and invite.reason is None


def test_one_send_that_reached_a_peer_keeps_the_invitation_open_until_expiry() -> None:
    invites = flows()
    invites.send(INVITE, GROUP, BOB, "Friends", expires_at=100.0, now=0.0)
    invites.sent(INVITE, 0.0, reached=True)
    for now in (10.0, 30.0, 70.0):
        assert invites.sent(INVITE, now, reached=False, reason="no peers") is not None
    assert invites.get(INVITE).state is InviteState.INVITED  # type: ignore[union-attr]
    _, expired = invites.due(100.0)
    assert [(i.id, t.new) for i, t in expired] == [(INVITE, InviteState.EXPIRED)]


def test_a_received_invitation_waits_for_an_answer_and_copies_change_nothing() -> None:
    invites = flows()
    first = invites.received(INVITE, GROUP, "cw1alice", "Friends", 500.0, [b"log"], now=1.0)
    assert first.new is InviteState.INVITED
    copy = invites.received(INVITE, GROUP, "cw1alice", "Friends", 500.0, [b"log"], now=2.0)
    assert copy.event is InviteEvent.RECEIVE_COPY
    invite = invites.get(INVITE)
    assert invite is not None and invite.log == [b"log"] and invite.next_send_at is None
    assert invites.next_wakeup() == 500.0  # only its expiry: we never re-send theirs
    invites.decline(INVITE, 3.0)
    with pytest.raises(InviteError, match="no longer open"):
        invites.accept(INVITE, 4.0)
    assert (
        invites.received(INVITE, GROUP, "cw1alice", "F", 500.0, [], 5.0).new is InviteState.DECLINED
    )


@pytest.mark.parametrize(
    ("direction", "steps", "end"),
    [
        (Direction.SENT, [InviteEvent.SEND, InviteEvent.DECLINED], InviteState.DECLINED),
        (Direction.SENT, [InviteEvent.SEND, InviteEvent.CANCEL], InviteState.CANCELLED),
        (Direction.SENT, [InviteEvent.SEND, InviteEvent.EXPIRE, InviteEvent.ACCEPTED],
         InviteState.JOINED),
        (Direction.SENT, [InviteEvent.SEND, InviteEvent.CANCEL, InviteEvent.ACCEPTED],
         InviteState.JOINED),
        (Direction.RECEIVED, [InviteEvent.RECEIVE, InviteEvent.ACCEPT], InviteState.JOINED),
        (Direction.RECEIVED, [InviteEvent.RECEIVE, InviteEvent.CANCELLED],
         InviteState.CANCELLED),
        (Direction.RECEIVED, [InviteEvent.RECEIVE, InviteEvent.EXPIRE], InviteState.EXPIRED),
    ],
)  # fmt: skip
def test_the_table_walks(direction: Direction, steps: list[InviteEvent], end: InviteState) -> None:
    state = None
    for event in steps:
        state = TRANSITIONS[(direction, state, event)]
    assert state is end


def test_every_state_can_be_left_or_is_final_and_impossible_steps_are_sentences() -> None:
    invites = flows()
    invites.received(INVITE, GROUP, "cw1alice", "Friends", 500.0, [], now=1.0)
    invites.accept(INVITE, 2.0)
    with pytest.raises(InviteError, match="no longer open"):
        invites.decline(INVITE, 3.0)
    with pytest.raises(InviteError, match="one we sent"):
        invites.send("x" * 32, GROUP, BOB, "F", 9.0, 1.0) and invites.received(
            "x" * 32, GROUP, BOB, "F", 9.0, [], 1.0
        )
    with pytest.raises(InviteError, match="no such"):
        invites.cancel("nope", 1.0)


def test_an_invitation_survives_a_restart() -> None:
    invites = flows()
    invites.received(INVITE, GROUP, "cw1alice", "Friends", 500.0, [b"\x01\x02"], now=1.0)
    invite = invites.get(INVITE)
    assert invite is not None
    restored = invite_from_json(INVITE, invite_to_json(invite))
    assert restored == invite
    with pytest.raises(InviteError):
        invite_from_json(INVITE, {"state": "nonsense"})
