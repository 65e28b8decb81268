"""Contact requests: one persisted state machine per request, in the h11 style.

States (the table below is the whole truth):

    request_sent      we sent a request (an Olm pre-key message carrying our link and intro)
                      and wait for the answer; re-sent on a schedule the user can see
    request_received  someone asked us; we have not answered
    mutual            both sides agreed: the conversation can start
    declined          the receiver said no (we know it on their side; a sender learns it only
                      if the receiver chose to tell)
    cancelled         the sender withdrew the request
    expired           nobody answered within the request's lifetime

Rules:
- An acceptance answers inside the same Olm session, so "mutual" is reached on both sides
  by evidence (the accept message), never by assumption.
- Re-requesting after decline, cancel or expiry starts a new request (a new sent state)
  with a fresh schedule; the old request's history stays.
- A request from someone we already asked makes both sides mutual at once (crossed requests).
- Re-sends follow the retry schedule until the request expires.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class RequestState(Enum):
    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    MUTUAL = "mutual"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class RequestEvent(Enum):
    SEND = "send"  # we ask
    RECEIVE = "receive"  # they ask
    ACCEPT = "accept"  # we accept theirs
    ACCEPTED = "accepted"  # they accepted ours
    DECLINE = "decline"  # we decline theirs
    DECLINED = "declined"  # they declined ours (if they told us)
    CANCEL = "cancel"  # we withdraw ours
    CANCELLED = "cancelled"  # they withdrew theirs
    EXPIRE = "expire"


SENT, RECEIVED = RequestState.REQUEST_SENT, RequestState.REQUEST_RECEIVED
MUTUAL, DECLINED = RequestState.MUTUAL, RequestState.DECLINED
CANCELLED, EXPIRED = RequestState.CANCELLED, RequestState.EXPIRED
E = RequestEvent

TRANSITIONS: dict[tuple[RequestState | None, RequestEvent], RequestState] = {
    (None, E.SEND): SENT,
    (None, E.RECEIVE): RECEIVED,
    (SENT, E.SEND): SENT,  # a re-send
    (SENT, E.ACCEPTED): MUTUAL,
    (SENT, E.RECEIVE): MUTUAL,  # crossed requests: both asked
    (SENT, E.DECLINED): DECLINED,
    (SENT, E.CANCEL): CANCELLED,
    (SENT, E.EXPIRE): EXPIRED,
    (RECEIVED, E.RECEIVE): RECEIVED,  # their re-send
    (RECEIVED, E.ACCEPT): MUTUAL,
    (RECEIVED, E.SEND): MUTUAL,  # asking someone who asked us is accepting
    (RECEIVED, E.DECLINE): DECLINED,
    (RECEIVED, E.CANCELLED): CANCELLED,
    (RECEIVED, E.EXPIRE): EXPIRED,
    (MUTUAL, E.ACCEPTED): MUTUAL,  # duplicate acceptance
    (MUTUAL, E.RECEIVE): MUTUAL,  # a late re-send of their request
    (DECLINED, E.SEND): SENT,  # re-request after decline
    (DECLINED, E.RECEIVE): RECEIVED,  # they ask again
    (CANCELLED, E.SEND): SENT,
    (CANCELLED, E.RECEIVE): RECEIVED,
    (EXPIRED, E.SEND): SENT,
    (EXPIRED, E.RECEIVE): RECEIVED,
    (EXPIRED, E.ACCEPTED): MUTUAL,  # a late acceptance is still an acceptance
}

OPEN_STATES = frozenset({SENT, RECEIVED})


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
        base = min(self.max_resend_delay, self.first_resend * self.factor ** max(0, sends - 1))
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
    intro: str = ""
    sends: int = 0
    next_send_at: float | None = None
    expires_at: float | None = None
    history: list[RequestTransition] = field(default_factory=list)

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

    def restore(self, flow: ContactRequest) -> None:
        self._flows[flow.chat_key] = flow

    def all(self) -> list[ContactRequest]:
        return list(self._flows.values())

    # ---- our side ------------------------------------------------------------------------
    def send(self, chat_key: str, intro: str, now: float) -> RequestTransition:
        """Ask (or ask again). The caller sends the request when this returns."""
        flow = self.get(chat_key)
        if flow.state is MUTUAL:
            raise ContactRequestError("you are already contacts")
        fresh = flow.state not in (SENT, RECEIVED)
        transition = self._apply(flow, E.SEND, now, {"intro": intro} if fresh else {})
        if flow.state is SENT:
            if fresh:
                flow.intro, flow.sends = intro, 0
                flow.expires_at = now + self.policy.lifetime
            flow.sends += 1
            flow.next_send_at = now + self.policy.resend_delay(flow.sends, self._rng)
        else:
            self._close(flow)
        return transition

    def accept(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.ACCEPT, now, "there is no request from them to accept")

    def decline(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.DECLINE, now, "there is no request from them to decline")

    def cancel(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.CANCEL, now, "there is no request of yours to cancel")

    # ---- their side ----------------------------------------------------------------------
    def received(self, chat_key: str, intro: str, now: float) -> RequestTransition:
        flow = self.get(chat_key)
        transition = self._apply(flow, E.RECEIVE, now, {"intro": intro})
        if flow.state is RECEIVED:
            flow.intro = intro
            flow.expires_at = now + self.policy.lifetime
            flow.next_send_at = None
        else:
            self._close(flow)
        return transition

    def accepted(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.ACCEPTED, now, "we never asked them")

    def declined(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.DECLINED, now, "we never asked them")

    def withdrawn(self, chat_key: str, now: float) -> RequestTransition:
        return self._finish(chat_key, E.CANCELLED, now, "they had not asked")

    # ---- time ----------------------------------------------------------------------------
    def due(self, now: float) -> tuple[list[ContactRequest], list[RequestTransition]]:
        """(requests to re-send now, requests that just expired)."""
        resend: list[ContactRequest] = []
        expired: list[RequestTransition] = []
        for flow in self._flows.values():
            if flow.open and flow.expires_at is not None and now >= flow.expires_at:
                expired.append(self._apply(flow, E.EXPIRE, now, {}))
                self._close(flow)
            elif flow.state is SENT and flow.next_send_at is not None and now >= flow.next_send_at:
                resend.append(flow)
        return resend, expired

    def resent(self, chat_key: str, now: float) -> RequestTransition:
        return self.send(chat_key, self.get(chat_key).intro, now)

    def next_wakeup(self) -> float | None:
        times = [t for f in self._flows.values() if f.open for t in (f.next_send_at, f.expires_at)]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    # ---- internals -----------------------------------------------------------------------
    def _finish(
        self, chat_key: str, event: RequestEvent, now: float, impossible: str
    ) -> RequestTransition:
        flow = self.get(chat_key)
        if (flow.state, event) not in TRANSITIONS:
            raise ContactRequestError(impossible)
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
            state = flow.state.value if flow.state else "no request"
            raise ContactRequestError(f"cannot {event.value} when the request is {state}") from None
        transition = RequestTransition(flow.state, new, event, now, details)
        flow.state = new
        flow.history.append(transition)
        return transition
