from __future__ import annotations

import itertools
import random

import pytest

from chat.contacts import (
    TRANSITIONS,
    ContactRequest,
    ContactRequestError,
    ContactRequests,
    RequestEvent,
    RequestPolicy,
    RequestState,
)

POLICY = RequestPolicy(lifetime=1000, first_resend=10, factor=3, max_resend_delay=100, jitter=0.1)
BOB = "cw1bob"


def _flows() -> ContactRequests:
    return ContactRequests(POLICY, random.Random(4))


def test_request_then_acceptance_is_mutual_with_history() -> None:
    flows = _flows()
    flows.send(BOB, "hi, it's Alice from the meetup", now=0)
    flow = flows.get(BOB)
    assert flow.state is RequestState.REQUEST_SENT and flow.open
    assert flow.expires_at == 1000 and flow.next_send_at is not None
    flows.accepted(BOB, now=5)
    assert flow.state is RequestState.MUTUAL and not flow.open
    assert [(t.old, t.new) for t in flow.history] == [
        (None, RequestState.REQUEST_SENT),
        (RequestState.REQUEST_SENT, RequestState.MUTUAL),
    ]
    assert flow.history[0].details == {"intro": "hi, it's Alice from the meetup"}
    assert flows.next_wakeup() is None


def test_resend_schedule_grows_and_caps_then_the_request_expires() -> None:
    flows = _flows()
    flows.send(BOB, "hello", now=0)
    now, delays = 0.0, []
    while True:
        wake = flows.next_wakeup()
        assert wake is not None
        now = wake
        resend, expired = flows.due(now)
        if expired:
            break
        assert [f.chat_key for f in resend] == [BOB]
        before = now
        flows.resent(BOB, now)
        next_at = flows.get(BOB).next_send_at
        assert next_at is not None
        delays.append(next_at - before)
    for delay, base in zip(delays, [30, 90, 100, 100], strict=False):
        assert base * 0.9 <= delay <= base * 1.1
    flow = flows.get(BOB)
    assert flow.state is RequestState.EXPIRED and now == 1000
    assert flow.intro == "hello" and flow.sends == len(delays) + 1


def test_incoming_request_accept_decline_and_asking_again() -> None:
    flows = _flows()
    flows.received(BOB, "hey", now=0)
    assert flows.get(BOB).state is RequestState.REQUEST_RECEIVED
    flows.decline(BOB, now=1)
    assert flows.get(BOB).state is RequestState.DECLINED
    flows.received(BOB, "please?", now=2)  # they ask again
    flows.accept(BOB, now=3)
    assert flows.get(BOB).state is RequestState.MUTUAL


def test_re_request_after_decline_cancel_or_expiry_starts_fresh() -> None:
    flows = _flows()
    flows.send(BOB, "one", now=0)
    flows.declined(BOB, now=1)
    flows.send(BOB, "two", now=2)
    flow = flows.get(BOB)
    assert flow.state is RequestState.REQUEST_SENT and flow.intro == "two" and flow.sends == 1
    assert flow.expires_at == 1002
    flows.cancel(BOB, now=3)
    assert flow.state is RequestState.CANCELLED and flow.next_send_at is None
    flows.send(BOB, "three", now=4)
    assert flow.state is RequestState.REQUEST_SENT


def test_crossed_requests_are_mutual_on_both_sides() -> None:
    alice, bob = _flows(), _flows()
    alice.send("bob", "hi bob", now=0)
    bob.send("alice", "hi alice", now=0)
    alice.received("bob", "hi alice", now=1)
    bob.received("alice", "hi bob", now=1)
    assert alice.get("bob").state is RequestState.MUTUAL
    assert bob.get("alice").state is RequestState.MUTUAL
    # Asking someone who already asked us is accepting them.
    carol = _flows()
    carol.received("dave", "hi", now=0)
    carol.send("dave", "hi back", now=1)
    assert carol.get("dave").state is RequestState.MUTUAL


def test_impossible_steps_are_sentences() -> None:
    flows = _flows()
    with pytest.raises(ContactRequestError, match="no request from them to accept"):
        flows.accept(BOB, now=0)
    flows.send(BOB, "x", now=0)
    flows.accepted(BOB, now=1)
    with pytest.raises(ContactRequestError, match="already contacts"):
        flows.send(BOB, "again", now=2)
    with pytest.raises(ContactRequestError):
        flows.cancel(BOB, now=3)


def test_a_late_acceptance_after_expiry_still_counts() -> None:
    flows = _flows()
    flows.send(BOB, "x", now=0)
    flows.due(1000)
    assert flows.get(BOB).state is RequestState.EXPIRED
    flows.accepted(BOB, now=2000)
    assert flows.get(BOB).state is RequestState.MUTUAL


def test_every_pair_outside_the_table_is_refused() -> None:
    for state, event in itertools.product([None, *RequestState], RequestEvent):
        if (state, event) in TRANSITIONS:
            continue
        with pytest.raises(ContactRequestError):
            ContactRequests._apply(ContactRequest(BOB, state=state), event, 0, {})
