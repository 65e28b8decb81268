from __future__ import annotations

import random

import pytest

from chat.contacts import (
    MAX_HISTORY,
    OURS,
    STRANGERS,
    TRANSITIONS,
    ContactRequestError,
    ContactRequests,
    RequestPolicy,
    RequestState,
)

POLICY = RequestPolicy(lifetime=1000, first_resend=10, factor=3, max_resend_delay=100, jitter=0.1)
BOB = "cw1bob"


def _flows(seed: int = 4) -> ContactRequests:
    return ContactRequests(POLICY, random.Random(seed))


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
    assert flow.history[0].details == {
        "intro": "hi, it's Alice from the meetup",
        "request_id": flow.request_id,
    }
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
    assert flow.state is RequestState.SENT_EXPIRED and now == 1000
    assert flow.intro == "hello" and flow.sends == len(delays) + 1


def test_incoming_request_accept_decline_and_asking_again() -> None:
    flows = _flows()
    flows.received(BOB, "hey", now=0, request_id="r1")
    assert flows.get(BOB).state is RequestState.REQUEST_RECEIVED
    flows.decline(BOB, now=1)
    assert flows.get(BOB).state is RequestState.DECLINED_BY_US
    flows.received(BOB, "please?", now=2, request_id="r2")  # they ask again: a new request
    flows.accept(BOB, now=3)
    assert flows.get(BOB).state is RequestState.MUTUAL


def test_re_request_after_decline_cancel_or_expiry_starts_fresh() -> None:
    flows = _flows()
    flows.send(BOB, "one", now=0)
    first_id = flows.get(BOB).request_id
    flows.declined(BOB, now=1)
    assert flows.get(BOB).state is RequestState.DECLINED_BY_THEM
    flows.send(BOB, "two", now=2)
    flow = flows.get(BOB)
    assert flow.state is RequestState.REQUEST_SENT and flow.intro == "two" and flow.sends == 1
    assert flow.expires_at == 1002
    second_id = flow.request_id
    assert second_id is not None and second_id != first_id
    flows.cancel(BOB, now=3)
    assert flow.state is RequestState.CANCELLED_BY_US and flow.next_send_at is None
    flows.send(BOB, "three", now=4)
    assert flow.state is RequestState.REQUEST_SENT and flow.request_id not in (first_id, second_id)
    assert flow.history[-1].details == {"intro": "three", "request_id": flow.request_id}


def test_crossed_requests_are_mutual_on_both_sides() -> None:
    alice, bob = _flows(1), _flows(2)
    alice.send("bob", "hi bob", now=0)
    bob.send("alice", "hi alice", now=0)
    alice.received("bob", "hi alice", now=1, request_id=_id(bob, "alice"))
    bob.received("alice", "hi bob", now=1, request_id=_id(alice, "bob"))
    assert alice.get("bob").state is RequestState.MUTUAL
    assert bob.get("alice").state is RequestState.MUTUAL
    # Asking someone who already asked us is accepting them.
    carol = _flows()
    carol.received("dave", "hi", now=0, request_id="d1")
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
    assert flows.get(BOB).state is RequestState.SENT_EXPIRED
    flows.accepted(BOB, now=2000)
    assert flows.get(BOB).state is RequestState.MUTUAL


def _id(flows: ContactRequests, chat_key: str) -> str:
    request_id = flows.get(chat_key).request_id
    assert request_id is not None
    return request_id


def test_resends_of_a_declined_request_do_not_reopen_it() -> None:
    # Finding 7: Alice's client keeps re-sending the request Bob declined without telling.
    alice, bob = _flows(1), _flows(2)
    alice.send("bob", "hi", now=0)
    bob.received("alice", "hi", now=1, request_id=_id(alice, "bob"))
    bob.decline("alice", now=2)
    now = 0.0
    for _ in range(3):
        resend, _expired = alice.due(now := alice.get("bob").next_send_at or 0.0)
        assert [f.chat_key for f in resend] == ["bob"]
        alice.resent("bob", now)
        bob.received("alice", "hi", now=now, request_id=_id(alice, "bob"))
        flow = bob.get("alice")
        assert flow.state is RequestState.DECLINED_BY_US and not flow.open
        assert flow.expires_at is None and flow.next_send_at is None
    assert bob.next_wakeup() is None
    # Asking again is a new request with a new id: that one is open again.
    alice.cancel("bob", now=now + 1)
    alice.send("bob", "sorry, one more try", now=now + 2)
    bob.received("alice", "sorry, one more try", now=now + 3, request_id=_id(alice, "bob"))
    assert bob.get("alice").state is RequestState.REQUEST_RECEIVED


def test_their_resends_neither_extend_nor_reopen_their_request() -> None:
    flows = _flows()
    flows.received(BOB, "hey", now=0, request_id="r1")
    flows.received(BOB, "hey", now=500, request_id="r1")  # their re-send
    assert flows.get(BOB).expires_at == 1000  # counted from the first copy
    flows.withdrawn(BOB, now=600)
    flows.received(BOB, "hey", now=700, request_id="r1")  # a copy still on the way
    assert flows.get(BOB).state is RequestState.CANCELLED_BY_THEM
    flows.received(BOB, "hey again", now=800, request_id="r2")
    assert flows.get(BOB).state is RequestState.REQUEST_RECEIVED
    (expired,) = flows.due(1800)[1]
    assert expired.new is RequestState.RECEIVED_EXPIRED
    flows.received(BOB, "hey again", now=1900, request_id="r2")
    assert flows.get(BOB).state is RequestState.RECEIVED_EXPIRED


def test_a_cancel_crossing_an_acceptance_ends_mutual_on_both_sides() -> None:
    # Finding 8: Alice withdraws while Bob accepts; each learns of the other's step later.
    alice, bob = _flows(1), _flows(2)
    alice.send("bob", "hi", now=0)
    bob.received("alice", "hi", now=1, request_id=_id(alice, "bob"))
    alice.cancel("bob", now=2)
    bob.accept("alice", now=2)
    alice.accepted("bob", now=3)
    bob.withdrawn("alice", now=3)
    assert alice.get("bob").state is RequestState.MUTUAL
    assert bob.get("alice").state is RequestState.MUTUAL


def test_a_decline_crossing_a_cancel_leaves_both_sides_closed() -> None:
    alice, bob = _flows(1), _flows(2)
    alice.send("bob", "hi", now=0)
    bob.received("alice", "hi", now=1, request_id=_id(alice, "bob"))
    alice.cancel("bob", now=2)
    bob.decline("alice", now=2)
    alice.declined("bob", now=3)
    bob.withdrawn("alice", now=3)
    assert alice.get("bob").state is RequestState.CANCELLED_BY_US
    assert bob.get("alice").state is RequestState.DECLINED_BY_US


def test_request_ids_are_bounded_and_well_formed() -> None:
    flows = _flows()
    for bad in ("", "x" * 65, "bad id", "é"):
        with pytest.raises(ContactRequestError, match="no valid request id"):
            flows.received(BOB, "hi", now=0, request_id=bad)
    assert flows.get(BOB).state is None and flows.get(BOB).history == []
    flows.send(BOB, "hi", now=0)
    assert len(_id(flows, BOB)) <= 64


ERROR = "error"
S = RequestState
# Every public command in every state, each state reached through the public API. A cell is
# the state after the command, or ERROR: a ContactRequestError with a sentence for the user.
# "copy" = a request carrying the id of the flow's current request (a re-send, or our own id
# echoed back); "new" = a request with an id this flow has not seen.
COMMANDS = (
    "send",
    "accept",
    "decline",
    "cancel",
    "receive new",
    "receive copy",
    "accepted",
    "declined",
    "withdrawn",
)
E_ = ERROR
TABLE: dict[RequestState | None, tuple[RequestState | str, ...]] = {
    None: (S.REQUEST_SENT, E_, E_, E_, S.REQUEST_RECEIVED, S.REQUEST_RECEIVED, E_, E_, E_),
    S.REQUEST_SENT: (
        S.REQUEST_SENT,
        E_,
        E_,
        S.CANCELLED_BY_US,
        S.MUTUAL,
        E_,
        S.MUTUAL,
        S.DECLINED_BY_THEM,
        E_,
    ),
    S.REQUEST_RECEIVED: (
        S.MUTUAL,
        S.MUTUAL,
        S.DECLINED_BY_US,
        E_,
        S.REQUEST_RECEIVED,
        S.REQUEST_RECEIVED,
        E_,
        E_,
        S.CANCELLED_BY_THEM,
    ),
    S.MUTUAL: (E_, E_, E_, E_, S.MUTUAL, S.MUTUAL, S.MUTUAL, E_, S.MUTUAL),
    S.DECLINED_BY_US: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        S.DECLINED_BY_US,
        E_,
        E_,
        S.DECLINED_BY_US,
    ),
    S.DECLINED_BY_THEM: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        E_,
        E_,
        S.DECLINED_BY_THEM,
        E_,
    ),
    S.CANCELLED_BY_US: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        E_,
        S.MUTUAL,
        S.CANCELLED_BY_US,
        E_,
    ),
    S.CANCELLED_BY_THEM: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        S.CANCELLED_BY_THEM,
        E_,
        E_,
        S.CANCELLED_BY_THEM,
    ),
    S.SENT_EXPIRED: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        E_,
        S.MUTUAL,
        S.DECLINED_BY_THEM,
        E_,
    ),
    S.RECEIVED_EXPIRED: (
        S.REQUEST_SENT,
        E_,
        E_,
        E_,
        S.REQUEST_RECEIVED,
        S.RECEIVED_EXPIRED,
        E_,
        E_,
        S.CANCELLED_BY_THEM,
    ),
}


def _reach(state: RequestState | None) -> ContactRequests:
    flows = _flows()
    steps = {
        None: [],
        S.REQUEST_SENT: ["send"],
        S.REQUEST_RECEIVED: ["receive"],
        S.MUTUAL: ["receive", "accept"],
        S.DECLINED_BY_US: ["receive", "decline"],
        S.DECLINED_BY_THEM: ["send", "declined"],
        S.CANCELLED_BY_US: ["send", "cancel"],
        S.CANCELLED_BY_THEM: ["receive", "withdrawn"],
        S.SENT_EXPIRED: ["send", "expire"],
        S.RECEIVED_EXPIRED: ["receive", "expire"],
    }[state]
    for step in steps:
        if step == "send":
            flows.send(BOB, "hi", now=0)
        elif step == "receive":
            flows.received(BOB, "hi", now=0, request_id="theirs-1")
        elif step == "expire":
            flows.due(POLICY.lifetime)
        else:
            getattr(flows, step)(BOB, now=1)
    assert flows.get(BOB).state is state
    return flows


def _run(flows: ContactRequests, command: str) -> None:
    now = 2 * POLICY.lifetime
    if command == "send":
        flows.send(BOB, "hello", now)
    elif command == "receive new":
        flows.received(BOB, "hello", now, request_id="theirs-2")
    elif command == "receive copy":
        flows.received(BOB, "hello", now, request_id=flows.get(BOB).request_id or "theirs-1")
    else:
        getattr(flows, command)(BOB, now)


@pytest.mark.parametrize("state", TABLE, ids=lambda s: s.value if s else "none")
def test_every_public_command_in_every_state(state: RequestState | None) -> None:
    for command, expected in zip(COMMANDS, TABLE[state], strict=True):
        flows = _reach(state)
        history = len(flows.get(BOB).history)
        if expected == ERROR:
            with pytest.raises(ContactRequestError) as refused:
                _run(flows, command)
            assert len(str(refused.value).split()) >= 4, str(refused.value)
            assert flows.get(BOB).state is state and len(flows.get(BOB).history) == history
        else:
            _run(flows, command)
            flow = flows.get(BOB)
            assert flow.state is expected, (state, command)
            assert (flow.expires_at is not None) == flow.open  # open flows expire, others not
            assert (flow.next_send_at is not None) == (flow.state is S.REQUEST_SENT)


def test_the_table_has_no_row_the_public_commands_cannot_reach() -> None:
    reached = set()
    for state in TABLE:
        for command in COMMANDS:
            flows = _reach(state)
            try:
                _run(flows, command)
            except ContactRequestError:
                continue
            reached |= {(t.old, t.event) for t in flows.get(BOB).history}
    resending = _reach(S.REQUEST_SENT)  # a re-send on the schedule
    resending.resent(BOB, now=11)
    reached |= {(t.old, t.event) for t in resending.get(BOB).history}
    assert reached == set(TRANSITIONS)


def test_asking_again_while_our_request_is_open_changes_nothing() -> None:
    flows = _flows()
    flows.send(BOB, "hi", now=0)
    flow = flows.get(BOB)
    before = (flow.request_id, flow.intro, flow.sends, flow.next_send_at, len(flow.history))
    for attempt in range(50):
        assert flows.send(BOB, f"hi again {attempt}", now=1 + attempt) is None
    assert (flow.request_id, flow.intro, flow.sends, flow.next_send_at, len(flow.history)) == before


def test_every_state_is_ours_theirs_or_declined_by_us() -> None:
    """Who is a stranger follows the state: someone we chose (OURS), someone whose request
    we never answered (STRANGERS), or someone we declined (neither: not chosen, not held)."""
    assert not OURS & STRANGERS
    assert set(RequestState) == OURS | STRANGERS | {S.DECLINED_BY_US}


def test_the_history_of_a_flow_is_bounded_keeping_its_first_and_latest_steps() -> None:
    flows = _flows()
    flows.received(BOB, "hi", now=0, request_id="theirs-1")
    for i in range(500):  # a sender re-sending the same request, over and over
        flows.received(BOB, "hi", now=1 + i, request_id="theirs-1")
    flow = flows.get(BOB)
    assert len(flow.history) == MAX_HISTORY
    assert flow.history[0].at == 0 and flow.history[-1].at == 500
    assert flow.state is RequestState.REQUEST_RECEIVED and flow.request_id == "theirs-1"


def test_a_request_sent_hundreds_of_times_keeps_the_longest_delay() -> None:
    """Found by the api_request fuzz target's harness: POST /v1/contacts with one link, over
    and over, raised OverflowError (3.0 ** 646) from the re-send schedule: a 500. Asking
    again no longer sends at once, but a request re-sent on its schedule for long enough
    reaches the same power."""
    policy = RequestPolicy()  # the messenger's: a float factor, so the power can overflow
    rng = random.Random(4)
    longest = policy.max_resend_delay
    for sends in (646, 700, 10_000):
        assert longest * 0.9 <= policy.resend_delay(sends, rng) <= longest * 1.1
