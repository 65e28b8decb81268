"""Contact requests: one persisted state machine per contact, in the h11 style.

States (the table below is the whole truth):

    request_sent       we sent a request (an Olm pre-key message carrying our link, intro
                       and request id) and wait for the answer; re-sent on a schedule the
                       user can see
    request_received   someone asked us; we have not answered
    mutual             both sides agreed: the conversation can start
    declined_by_us     we said no to their request (they learn it only if we tell them)
    declined_by_them   they said no to ours, and told us
    cancelled_by_us    we withdrew our request
    cancelled_by_them  they withdrew theirs
    sent_expired       nobody answered our request within its lifetime
    received_expired   we did not answer theirs within its lifetime

Rules:
- Every request has an id (its creation time and a random nonce), carried in every copy.
  A request with the id of the flow's current request is a copy of it (a re-send, or one
  still on its way), never a new request: it does not reopen a request that was declined,
  withdrawn or expired, nor extend one that is open. A request with an id the flow has not
  seen is a new request and always opens (or answers) again.
- An acceptance answers inside the same Olm session, so "mutual" is reached on both sides
  by evidence (the accept message), never by assumption.
- Re-requesting after a decline, cancel or expiry starts a new request (a new id, a new
  sent state) with a fresh schedule; the old request's history stays.
- A request from someone we already asked makes both sides mutual at once (crossed requests).
- Acceptance wins a race with a cancel: an acceptance that arrives after we withdrew (or
  after our request expired) makes us mutual, and their withdrawal arriving after we
  accepted changes nothing. Both sides end mutual; removing a contact is a separate step.
- A decline that crosses a withdrawal (either way) leaves both sides closed as they are.
- Re-sends follow the retry schedule until the request expires. Asking again while our
  request is open sends nothing: the request keeps its id and its schedule.
- A withdrawal travels like an answer (inside the request's session, naming the request's
  id), so the other side sees cancelled_by_them instead of a request that is still waiting.
- Strangers: while the last word on a flow is theirs and we never answered (their request,
  withdrawn or expired), its sender is a stranger, and their messages share the small
  budget for strangers (chat/request_budget.py); contacts (OURS) never do.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class RequestState(Enum):
    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    MUTUAL = "mutual"
    DECLINED_BY_US = "declined_by_us"
    DECLINED_BY_THEM = "declined_by_them"
    CANCELLED_BY_US = "cancelled_by_us"
    CANCELLED_BY_THEM = "cancelled_by_them"
    SENT_EXPIRED = "sent_expired"
    RECEIVED_EXPIRED = "received_expired"


class RequestEvent(Enum):
    SEND = "send"  # we ask
    RECEIVE = "receive"  # they ask: a request this flow has not seen
    RECEIVE_COPY = "receive_copy"  # a copy of the flow's current request (same id)
    ACCEPT = "accept"  # we accept theirs
    ACCEPTED = "accepted"  # they accepted ours
    DECLINE = "decline"  # we decline theirs
    DECLINED = "declined"  # they declined ours (if they told us)
    CANCEL = "cancel"  # we withdraw ours
    CANCELLED = "cancelled"  # they withdrew theirs
    EXPIRE = "expire"


SENT, RECEIVED = RequestState.REQUEST_SENT, RequestState.REQUEST_RECEIVED
MUTUAL = RequestState.MUTUAL
DECLINED_BY_US, DECLINED_BY_THEM = RequestState.DECLINED_BY_US, RequestState.DECLINED_BY_THEM
CANCELLED_BY_US, CANCELLED_BY_THEM = RequestState.CANCELLED_BY_US, RequestState.CANCELLED_BY_THEM
SENT_EXPIRED, RECEIVED_EXPIRED = RequestState.SENT_EXPIRED, RequestState.RECEIVED_EXPIRED

TRANSITIONS: dict[tuple[RequestState | None, RequestEvent], RequestState] = {
    (None, RequestEvent.SEND): SENT,
    (None, RequestEvent.RECEIVE): RECEIVED,
    (SENT, RequestEvent.SEND): SENT,  # a re-send (same id)
    (SENT, RequestEvent.ACCEPTED): MUTUAL,
    (SENT, RequestEvent.RECEIVE): MUTUAL,  # crossed requests: both asked
    (SENT, RequestEvent.DECLINED): DECLINED_BY_THEM,
    (SENT, RequestEvent.CANCEL): CANCELLED_BY_US,
    (SENT, RequestEvent.EXPIRE): SENT_EXPIRED,
    (RECEIVED, RequestEvent.RECEIVE_COPY): RECEIVED,  # their re-send
    # they replaced their request (we missed a withdrawal)
    (RECEIVED, RequestEvent.RECEIVE): RECEIVED,
    (RECEIVED, RequestEvent.ACCEPT): MUTUAL,
    (RECEIVED, RequestEvent.SEND): MUTUAL,  # asking someone who asked us is accepting
    (RECEIVED, RequestEvent.DECLINE): DECLINED_BY_US,
    (RECEIVED, RequestEvent.CANCELLED): CANCELLED_BY_THEM,
    (RECEIVED, RequestEvent.EXPIRE): RECEIVED_EXPIRED,
    (MUTUAL, RequestEvent.ACCEPTED): MUTUAL,  # duplicate acceptance
    (MUTUAL, RequestEvent.RECEIVE): MUTUAL,  # a late request from a contact
    (MUTUAL, RequestEvent.RECEIVE_COPY): MUTUAL,  # a late re-send of the request we accepted
    (MUTUAL, RequestEvent.CANCELLED): MUTUAL,  # their withdrawal crossed our acceptance
    (DECLINED_BY_US, RequestEvent.SEND): SENT,  # we ask after all: a new request
    (DECLINED_BY_US, RequestEvent.RECEIVE): RECEIVED,  # they ask again: a new request
    # a re-send of the declined request
    (DECLINED_BY_US, RequestEvent.RECEIVE_COPY): DECLINED_BY_US,
    # their withdrawal crossed our decline
    (DECLINED_BY_US, RequestEvent.CANCELLED): DECLINED_BY_US,
    (DECLINED_BY_THEM, RequestEvent.SEND): SENT,  # re-request after decline
    (DECLINED_BY_THEM, RequestEvent.RECEIVE): RECEIVED,
    (DECLINED_BY_THEM, RequestEvent.DECLINED): DECLINED_BY_THEM,  # duplicate decline
    (CANCELLED_BY_US, RequestEvent.SEND): SENT,
    (CANCELLED_BY_US, RequestEvent.RECEIVE): RECEIVED,
    (CANCELLED_BY_US, RequestEvent.ACCEPTED): MUTUAL,  # their acceptance crossed our withdrawal
    # their decline crossed our withdrawal
    (CANCELLED_BY_US, RequestEvent.DECLINED): CANCELLED_BY_US,
    (CANCELLED_BY_THEM, RequestEvent.SEND): SENT,
    (CANCELLED_BY_THEM, RequestEvent.RECEIVE): RECEIVED,
    (CANCELLED_BY_THEM, RequestEvent.RECEIVE_COPY): CANCELLED_BY_THEM,  # a copy still on its way
    (CANCELLED_BY_THEM, RequestEvent.CANCELLED): CANCELLED_BY_THEM,  # duplicate withdrawal
    (SENT_EXPIRED, RequestEvent.SEND): SENT,
    (SENT_EXPIRED, RequestEvent.RECEIVE): RECEIVED,
    (SENT_EXPIRED, RequestEvent.ACCEPTED): MUTUAL,  # a late acceptance is still an acceptance
    (SENT_EXPIRED, RequestEvent.DECLINED): DECLINED_BY_THEM,  # a late decline is still an answer
    (RECEIVED_EXPIRED, RequestEvent.SEND): SENT,
    (RECEIVED_EXPIRED, RequestEvent.RECEIVE): RECEIVED,
    # a late re-send of the expired one
    (RECEIVED_EXPIRED, RequestEvent.RECEIVE_COPY): RECEIVED_EXPIRED,
    (RECEIVED_EXPIRED, RequestEvent.CANCELLED): CANCELLED_BY_THEM,
}

IMPOSSIBLE: dict[RequestEvent, str] = {
    RequestEvent.SEND: "you are already contacts",
    RequestEvent.RECEIVE: "a new request is always possible",  # every state has a row
    RequestEvent.RECEIVE_COPY: "their request carries the id of our own request",
    RequestEvent.ACCEPT: "there is no request from them to accept",
    RequestEvent.ACCEPTED: "they accepted a request we have not sent",
    RequestEvent.DECLINE: "there is no request from them to decline",
    RequestEvent.DECLINED: "they declined a request we have not sent",
    RequestEvent.CANCEL: "there is no request of yours to cancel",
    RequestEvent.CANCELLED: "they withdrew a request they have not sent",
    RequestEvent.EXPIRE: "only an open request can expire",
}
"""What the user is told when a step is not in the table."""

OPEN_STATES = frozenset({SENT, RECEIVED})
OURS = frozenset({SENT, MUTUAL, DECLINED_BY_THEM, CANCELLED_BY_US, SENT_EXPIRED})
"""We asked (or accepted): the other side is someone we chose."""
STRANGERS = frozenset({RECEIVED, CANCELLED_BY_THEM, RECEIVED_EXPIRED})
"""Their request, never answered: its sender is a stranger (chat/request_budget.py)."""

MAX_HISTORY = 64
"""Transitions kept per flow: the first and the latest."""

REQUEST_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
"""A request id as we accept it from the wire: short, and safe to store and log."""


def new_request_id(now: float, rng: random.Random) -> str:
    """Creation time (ms) and a 64-bit nonce: distinct for every request we make."""
    return f"{int(now * 1000):x}-{rng.getrandbits(64):016x}"


class ContactRequestError(Exception):
    """A step that is not possible now; the message is a sentence for the user."""


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    lifetime: float = 14 * 24 * 3600.0
    """A request nobody answers expires after this long."""
    first_resend: float = 60.0
    factor: float = 3.0
    max_resend_delay: float = 24 * 3600.0
    jitter: float = 0.1

    def resend_delay(self, sends: int, rng: random.Random) -> float:
        try:
            grown = self.first_resend * self.factor ** max(0, sends - 1)
        except OverflowError:  # a request sent again hundreds of times: far past the cap
            grown = self.max_resend_delay
        base = min(self.max_resend_delay, grown)
        return base * (1 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class RequestTransition:
    old: RequestState | None
    new: RequestState
    event: RequestEvent
    at: float
    details: dict[str, Any]


@dataclass
class ContactRequest:
    """The request flow with one contact (identified by their chat key)."""

    chat_key: str
    state: RequestState | None = None
    request_id: str | None = None
    """The current request's id: ours in our states, theirs in theirs."""
    intro: str = ""
    sends: int = 0
    next_send_at: float | None = None
    expires_at: float | None = None
    history: list[RequestTransition] = field(default_factory=list)
    our_pair_nonce: str | None = None
    """Hex of 32 random bytes we send in our requests and answers (kept for the contact's
    lifetime); with theirs, the pair secret of the 1:1 chat's telemetry reference."""
    their_pair_nonce: str | None = None
    """Theirs, from their latest request or answer; None while they sent none (an older
    version: the chat's reference then falls back to the pair of chat keys)."""

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


class ContactRequests:
    """Sans-IO. The messenger persists each returned transition, then does the sending."""

    def __init__(self, policy: RequestPolicy | None = None, rng: random.Random | None = None):
        self.policy = policy or RequestPolicy()
        self._rng = rng or random.Random()
        self._flows: dict[str, ContactRequest] = {}

    def get(self, chat_key: str) -> ContactRequest:
        return self._flows.setdefault(chat_key, ContactRequest(chat_key))

    def find(self, chat_key: str) -> ContactRequest | None:
        """The flow with this person, if there is one (`get` would start one)."""
        return self._flows.get(chat_key)

    def restore(self, flow: ContactRequest) -> None:
        self._flows[flow.chat_key] = flow

    def forget(self, chat_key: str) -> None:
        """Drop the flow and its history (a stranger's request dropped as spam)."""
        self._flows.pop(chat_key, None)

    def all(self) -> list[ContactRequest]:
        return list(self._flows.values())

    # ---- our side ------------------------------------------------------------------------
    def send(self, chat_key: str, intro: str, now: float) -> RequestTransition | None:
        """Ask. The caller sends the request, with `get(chat_key).request_id`, when this
        returns a transition. Asking while our request is open changes nothing (None): it
        keeps its id, intro and re-send schedule."""
        flow = self.get(chat_key)
        if flow.state is SENT:
            return None
        return self._send(flow, intro, now)

    def _send(self, flow: ContactRequest, intro: str, now: float) -> RequestTransition:
        fresh = flow.state not in (SENT, RECEIVED, MUTUAL)
        request_id = new_request_id(now, self._rng) if fresh else None
        details = {"intro": intro, "request_id": request_id} if fresh else {}
        transition = self._apply(flow, RequestEvent.SEND, now, details)
        if flow.state is SENT:
            if fresh:
                flow.request_id, flow.intro, flow.sends = request_id, intro, 0
                flow.expires_at = now + self.policy.lifetime
            flow.sends += 1
            flow.next_send_at = now + self.policy.resend_delay(flow.sends, self._rng)
        else:
            self._close(flow)
        return transition

    def accept(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.ACCEPT, now)

    def decline(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.DECLINE, now)

    def cancel(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.CANCEL, now)

    # ---- their side ----------------------------------------------------------------------
    def received(
        self, chat_key: str, intro: str, now: float, *, request_id: str
    ) -> RequestTransition:
        """A request (or a copy of one) arrived from them."""
        if REQUEST_ID.fullmatch(request_id) is None:
            raise ContactRequestError("their request carries no valid request id")
        flow = self.get(chat_key)
        copy = flow.state is not None and request_id == flow.request_id
        event = RequestEvent.RECEIVE_COPY if copy else RequestEvent.RECEIVE
        transition = self._apply(flow, event, now, {"intro": intro, "request_id": request_id})
        if event is RequestEvent.RECEIVE and flow.state is RECEIVED:
            flow.request_id, flow.intro = request_id, intro
            flow.expires_at = now + self.policy.lifetime
            flow.next_send_at = None
        elif not flow.open:
            self._close(flow)
        return transition

    def accepted(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.ACCEPTED, now)

    def declined(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.DECLINED, now)

    def withdrawn(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, RequestEvent.CANCELLED, now)

    # ---- time ----------------------------------------------------------------------------
    def due(self, now: float) -> tuple[list[ContactRequest], list[RequestTransition]]:
        """(requests to re-send now, requests that just expired)."""
        resend: list[ContactRequest] = []
        expired: list[RequestTransition] = []
        for flow in self._flows.values():
            if flow.open and flow.expires_at is not None and now >= flow.expires_at:
                expired.append(self._apply(flow, RequestEvent.EXPIRE, now, {}))
                self._close(flow)
            elif flow.state is SENT and flow.next_send_at is not None and now >= flow.next_send_at:
                resend.append(flow)
        return resend, expired

    def resent(self, chat_key: str, now: float) -> RequestTransition:
        """Our open request goes out again, on its schedule."""
        flow = self.get(chat_key)
        return self._send(flow, flow.intro, now)

    def next_wakeup(self) -> float | None:
        times = [t for f in self._flows.values() if f.open for t in (f.next_send_at, f.expires_at)]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    # ---- internals -----------------------------------------------------------------------
    def _finish(self, chat_key: str, event: RequestEvent, now: float) -> RequestTransition:
        flow = self.get(chat_key)
        transition = self._apply(flow, event, now, {})
        if not flow.open:
            self._close(flow)
        return transition

    @staticmethod
    def _close(flow: ContactRequest) -> None:
        flow.next_send_at = None
        flow.expires_at = None

    @staticmethod
    def _apply(
        flow: ContactRequest, event: RequestEvent, now: float, details: dict[str, Any]
    ) -> RequestTransition:
        try:
            new = TRANSITIONS[(flow.state, event)]
        except KeyError:
            raise ContactRequestError(IMPOSSIBLE[event]) from None
        transition = RequestTransition(flow.state, new, event, now, details)
        flow.state = new
        flow.history.append(transition)
        # Bounded: copies of a request (theirs, or our re-sends) must not grow what every
        # save of the flow writes. The first step (when it began) and the latest are kept.
        del flow.history[1 : -(MAX_HISTORY - 1)]
        return transition


# ---- persistence -------------------------------------------------------------------------
def flow_to_json(flow: ContactRequest) -> dict[str, Any]:
    return {
        "state": flow.state.value if flow.state else None,
        "request_id": flow.request_id,
        "intro": flow.intro,
        "sends": flow.sends,
        "next_send_at": flow.next_send_at,
        "expires_at": flow.expires_at,
        "our_pair_nonce": flow.our_pair_nonce,
        "their_pair_nonce": flow.their_pair_nonce,
        "history": [
            [t.old.value if t.old else None, t.new.value, t.event.value, t.at, t.details]
            for t in flow.history
        ],
    }


def flow_from_json(chat_key: str, data: dict[str, Any]) -> ContactRequest:
    """Raises ContactRequestError for data this version cannot read."""
    try:
        history = [
            RequestTransition(
                RequestState(old) if old else None,
                RequestState(new),
                RequestEvent(event),
                float(at),
                dict(details),
            )
            for old, new, event, at, details in data["history"]
        ]
        return ContactRequest(
            chat_key,
            RequestState(data["state"]) if data["state"] else None,
            data["request_id"],
            str(data["intro"]),
            int(data["sends"]),
            data["next_send_at"],
            data["expires_at"],
            history,
            _nonce(data.get("our_pair_nonce")),
            _nonce(data.get("their_pair_nonce")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContactRequestError(f"unreadable contact request state: {exc}") from None


PAIR_NONCE_BYTES = 32


def _nonce(value: Any) -> str | None:
    """A stored pair nonce (saved by an older version: absent)."""
    if isinstance(value, str) and len(value) == 2 * PAIR_NONCE_BYTES:
        bytes.fromhex(value)  # ValueError: unreadable state, as for any other field
        return value
    return None
