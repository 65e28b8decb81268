"""Join requests as a request flow: the transition table, the visible re-send schedule,
expiry with a reason, late answers, moderators' side, persistence."""

from __future__ import annotations

import random

import pytest

from chat.communities.join import (
    TRANSITIONS,
    Direction,
    JoinRequestError,
    JoinRequests,
    RequestPolicy,
    RequestState,
    request_from_json,
    request_to_json,
)

POLICY = RequestPolicy(
    lifetime=1000.0, first_resend=10.0, factor=2.0, max_resend_delay=40.0, jitter=0.0
)
COMMUNITY, REQUEST, ME, BOB = "c" * 32, "r" * 32, "cw1me", "cw1bob"


def flows() -> JoinRequests:
    return JoinRequests(POLICY, random.Random(1))


def test_a_sent_request_is_resent_on_a_growing_schedule_until_answered() -> None:
    requests = flows()
    requests.send(REQUEST, COMMUNITY, ME, "hello", now=0.0)
    request = requests.get(REQUEST)
    assert request is not None and request.state is RequestState.PENDING
    assert request.expires_at == 1000.0
    resend, _ = requests.due(0.0)
    assert resend == [request]
    times = []
    now = 0.0
    for _ in range(5):
        requests.sent(REQUEST, now)
        assert request.next_send_at is not None
        times.append(request.next_send_at - now)
        now = request.next_send_at
    assert times == [10.0, 20.0, 40.0, 40.0, 40.0]
    assert requests.next_wakeup() == request.next_send_at
    transition = requests.answered(REQUEST, now, accepted=True, by=BOB)
    assert (transition.old, transition.new) == (RequestState.PENDING, RequestState.ACCEPTED)
    assert request.answered_by == BOB and request.next_send_at is None
    assert requests.due(now + 100) == ([], [])


def test_an_unanswered_request_expires_with_a_reason_naming_the_owner() -> None:
    requests = flows()
    requests.send(REQUEST, COMMUNITY, ME, "", now=0.0)
    requests.sent(REQUEST, 0.0)
    requests.owner_seen(COMMUNITY, 400.0)
    _, expired = requests.due(1000.0)
    assert [request.id for request, _ in expired] == [REQUEST]
    request = requests.get(REQUEST)
    assert request is not None and request.state is RequestState.EXPIRED
    assert "owner was last seen at 400" in request.reason
    # A late acceptance still lets us in; asking again after expiry is possible too.
    requests.answered(REQUEST, 1001.0, accepted=True, by=BOB)
    assert request.state is RequestState.ACCEPTED


def test_an_expired_request_can_be_sent_again_with_a_fresh_schedule() -> None:
    requests = flows()
    requests.send(REQUEST, COMMUNITY, ME, "", now=0.0)
    requests.due(1000.0)
    requests.send(REQUEST, COMMUNITY, ME, "again", now=2000.0)
    request = requests.get(REQUEST)
    assert request is not None and request.state is RequestState.PENDING
    assert (request.sends, request.expires_at, request.message) == (0, 3000.0, "again")
    assert requests.open_for(COMMUNITY) is request


def test_closed_requests_refuse_steps_with_a_sentence() -> None:
    requests = flows()
    requests.send(REQUEST, COMMUNITY, ME, "", now=0.0)
    requests.cancel(REQUEST, 1.0)
    with pytest.raises(JoinRequestError, match="no longer pending"):
        requests.cancel(REQUEST, 2.0)
    with pytest.raises(JoinRequestError, match="no such"):
        requests.cancel("x" * 32, 2.0)


def test_a_moderator_answers_once_and_another_moderators_answer_closes_it() -> None:
    requests = flows()
    requests.received(REQUEST, COMMUNITY, BOB, "link", "hi", expires_at=500.0, now=0.0)
    copy = requests.received(REQUEST, COMMUNITY, BOB, "link", "hi", expires_at=500.0, now=5.0)
    assert copy.new is RequestState.PENDING
    requests.answered(REQUEST, 10.0, accepted=False, by="cw1admin", reason="full")
    request = requests.get(REQUEST)
    assert request is not None and request.state is RequestState.DECLINED
    assert request.reason == "full"
    with pytest.raises(JoinRequestError):
        requests.accept(REQUEST, 11.0, by=ME)
    # The requester asks again later: it opens again for the moderators.
    requests.received(REQUEST, COMMUNITY, BOB, "link", "please", expires_at=900.0, now=600.0)
    assert request.state is RequestState.PENDING
    requests.accept(REQUEST, 601.0, by=ME)
    assert request.state is RequestState.ACCEPTED and request.answered_by == ME


def test_a_request_id_cannot_be_taken_over_by_another_requester() -> None:
    requests = flows()
    requests.received(REQUEST, COMMUNITY, BOB, "link", "", expires_at=500.0, now=0.0)
    with pytest.raises(JoinRequestError, match="another request"):
        requests.received(REQUEST, COMMUNITY, "cw1eve", "link", "", expires_at=500.0, now=1.0)


def test_only_the_requester_cancels_and_only_moderators_accept() -> None:
    requests = flows()
    requests.received(REQUEST, COMMUNITY, BOB, "link", "", expires_at=500.0, now=0.0)
    with pytest.raises(JoinRequestError, match="only the requester"):
        requests.cancel(REQUEST, 1.0)
    requests.send("s" * 32, COMMUNITY, ME, "", now=0.0)
    with pytest.raises(JoinRequestError, match="moderator"):
        requests.accept("s" * 32, 1.0, by=ME)


def test_every_state_has_a_way_in_and_closed_states_no_way_back_to_open_for_moderators() -> None:
    reached = {new for new in TRANSITIONS.values()}
    assert reached == set(RequestState)
    for (direction, old, _event), new in TRANSITIONS.items():
        if direction is Direction.SENT and old is RequestState.ACCEPTED:
            assert new is RequestState.ACCEPTED


def test_a_request_survives_persistence() -> None:
    requests = flows()
    requests.send(REQUEST, COMMUNITY, ME, "hello", now=0.0)
    requests.sent(REQUEST, 0.0)
    requests.owner_seen(COMMUNITY, 3.0)
    request = requests.get(REQUEST)
    assert request is not None
    restored = request_from_json(REQUEST, request_to_json(request))
    assert restored == request
    with pytest.raises(JoinRequestError, match="unreadable"):
        request_from_json(REQUEST, {"community_id": COMMUNITY})
