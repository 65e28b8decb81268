"""Join requests: one persisted request flow per request, like contact requests and group
invitations (the table below is the whole truth).

Both sides keep a flow for the same request id:

    sent      we asked to join: the request goes, encrypted, to the owner and every admin
              (each over Olm), again on a visible schedule, until one of them answers, we
              cancel it, or it expires
    received  someone asked to join a community we moderate; any moderator's answer closes
              it on every moderator (the answer travels on the community's topic, signed)

States:

    pending    open: waiting for an answer (sent) / for ours or another moderator's (received)
    accepted   a moderator accepted it (the acceptance carried the keys, over Olm)
    declined   a moderator declined it
    cancelled  the requester withdrew it
    expired    nobody answered before it expired (the reason says whom it reached and when the
               owner was last seen)

Rules:
- A copy of a request we hold (a re-send, a store copy) changes nothing but `last_copy_at`.
- Re-sends follow `JoinPolicy.resend_delay` until the request is answered or expires.
- An answer counts even after the request expired here (a late acceptance still lets us in).
- A request that expired or was declined may be sent again: a fresh schedule and expiry.

Sans-IO: times come in as arguments; the messenger persists each transition, then sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class RequestState(Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class RequestEvent(Enum):
    SEND = "send"
    RESENT = "resent"
    RECEIVE = "receive"
    RECEIVE_COPY = "receive_copy"
    ACCEPT = "accept"  # we (a moderator) accept
    ACCEPTED = "accepted"  # a moderator accepted (ours, or another moderator's answer)
    DECLINE = "decline"
    DECLINED = "declined"
    CANCEL = "cancel"  # we withdraw ours
    CANCELLED = "cancelled"  # the requester withdrew theirs
    EXPIRE = "expire"


class Direction(Enum):
    SENT = "sent"
    RECEIVED = "received"


PENDING, ACCEPTED = RequestState.PENDING, RequestState.ACCEPTED
DECLINED, CANCELLED = RequestState.DECLINED, RequestState.CANCELLED
EXPIRED = RequestState.EXPIRED
SENT, RECEIVED = Direction.SENT, Direction.RECEIVED
E = RequestEvent

TRANSITIONS: dict[tuple[Direction, RequestState | None, RequestEvent], RequestState] = {
    # ---- requests we sent
    (SENT, None, E.SEND): PENDING,
    (SENT, EXPIRED, E.SEND): PENDING,  # asked again
    (SENT, DECLINED, E.SEND): PENDING,
    (SENT, CANCELLED, E.SEND): PENDING,
    (SENT, PENDING, E.RESENT): PENDING,
    (SENT, PENDING, E.ACCEPTED): ACCEPTED,
    (SENT, EXPIRED, E.ACCEPTED): ACCEPTED,  # a late acceptance still lets us in
    (SENT, PENDING, E.DECLINED): DECLINED,
    (SENT, EXPIRED, E.DECLINED): DECLINED,
    (SENT, PENDING, E.CANCEL): CANCELLED,
    (SENT, PENDING, E.EXPIRE): EXPIRED,
    (SENT, ACCEPTED, E.ACCEPTED): ACCEPTED,  # a second moderator's copy
    (SENT, DECLINED, E.DECLINED): DECLINED,
    # ---- requests to us (we moderate)
    (RECEIVED, None, E.RECEIVE): PENDING,
    (RECEIVED, PENDING, E.RECEIVE_COPY): PENDING,
    (RECEIVED, ACCEPTED, E.RECEIVE_COPY): ACCEPTED,
    (RECEIVED, DECLINED, E.RECEIVE_COPY): DECLINED,
    (RECEIVED, CANCELLED, E.RECEIVE_COPY): CANCELLED,
    (RECEIVED, EXPIRED, E.RECEIVE_COPY): EXPIRED,
    (RECEIVED, EXPIRED, E.RECEIVE): PENDING,  # asked again after it expired
    (RECEIVED, DECLINED, E.RECEIVE): PENDING,
    (RECEIVED, CANCELLED, E.RECEIVE): PENDING,
    (RECEIVED, PENDING, E.ACCEPT): ACCEPTED,
    (RECEIVED, PENDING, E.DECLINE): DECLINED,
    (RECEIVED, PENDING, E.ACCEPTED): ACCEPTED,  # another moderator answered
    (RECEIVED, PENDING, E.DECLINED): DECLINED,
    (RECEIVED, EXPIRED, E.ACCEPTED): ACCEPTED,
    (RECEIVED, ACCEPTED, E.ACCEPTED): ACCEPTED,
    (RECEIVED, DECLINED, E.DECLINED): DECLINED,
    (RECEIVED, PENDING, E.CANCELLED): CANCELLED,
    (RECEIVED, PENDING, E.EXPIRE): EXPIRED,
}

IMPOSSIBLE: dict[RequestEvent, str] = {
    E.SEND: "that request is still pending",
    E.RESENT: "only a pending request is sent again",
    E.RECEIVE: "that request is pending already",
    E.RECEIVE_COPY: "a copy of a request we do not hold",
    E.ACCEPT: "that request is no longer pending",
    E.ACCEPTED: "an acceptance of a request that is closed",
    E.DECLINE: "that request is no longer pending",
    E.DECLINED: "a refusal of a request that is closed",
    E.CANCEL: "that request is no longer pending",
    E.CANCELLED: "a withdrawal of a request that is closed",
    E.EXPIRE: "only a pending request can expire",
}
"""What the user is told when a step is not in the table."""

MAX_HISTORY = 32
MAX_REQUEST_MESSAGE = 500
"""Characters of the message a requester adds."""


class JoinRequestError(Exception):
    """A step that is not possible now; the message is a sentence for the user."""


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    lifetime: float = 7 * 24 * 3600.0
    first_resend: float = 60.0
    factor: float = 3.0
    max_resend_delay: float = 6 * 3600.0
    jitter: float = 0.1

    def resend_delay(self, sends: int, rng: random.Random) -> float:
        try:
            grown = self.first_resend * self.factor ** max(0, sends - 1)
        except OverflowError:
            grown = self.max_resend_delay
        return min(self.max_resend_delay, grown) * (1 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class RequestTransition:
    old: RequestState | None
    new: RequestState
    event: RequestEvent
    at: float
    reason: str = ""


@dataclass
class JoinRequest:
    id: str
    community_id: str
    direction: Direction
    requester: str
    """The requester's chat key (ours for sent requests)."""
    requester_link: str = ""
    message: str = ""
    state: RequestState | None = None
    reason: str = ""
    created_at: float = 0.0
    expires_at: float | None = None
    sends: int = 0
    next_send_at: float | None = None
    last_copy_at: float | None = None
    owner_last_seen: float | None = None
    """sent: when the owner's signed presence was last seen on the shard."""
    answered_by: str = ""
    """The moderator (chat key) whose answer closed it."""
    history: list[RequestTransition] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.state is PENDING


class JoinRequests:
    """Every join request of the profile, by id. Sans-IO."""

    def __init__(self, policy: RequestPolicy | None = None, rng: random.Random | None = None):
        self.policy = policy or RequestPolicy()
        self._rng = rng or random.Random()
        self._requests: dict[str, JoinRequest] = {}

    def get(self, request_id: str) -> JoinRequest | None:
        return self._requests.get(request_id)

    def get_for(self, request_id: str, community_id: str) -> JoinRequest | None:
        """The request if it is one to `community_id` (an answer names both)."""
        request = self._requests.get(request_id)
        return request if request is not None and request.community_id == community_id else None

    def all(self) -> list[JoinRequest]:
        return list(self._requests.values())

    def restore(self, request: JoinRequest) -> None:
        self._requests[request.id] = request

    def open_for(self, community_id: str) -> JoinRequest | None:
        """Our pending request to join this community."""
        for request in self._requests.values():
            if (request.community_id, request.direction) == (community_id, SENT) and request.open:
                return request
        return None

    # ---- ours ---------------------------------------------------------------------------
    def send(
        self,
        request_id: str,
        community_id: str,
        requester: str,
        message: str,
        now: float,
    ) -> RequestTransition:
        """We ask (again). The caller sends the request and then reports `sent`."""
        request = self._requests.get(request_id) or JoinRequest(
            request_id, community_id, SENT, requester
        )
        if request.direction is not SENT:
            raise JoinRequestError("that request is one we received")
        transition = self._apply(request, E.SEND, now)
        self._requests[request_id] = request
        request.message = message[:MAX_REQUEST_MESSAGE]
        request.created_at = request.created_at or now
        request.expires_at = now + self.policy.lifetime
        request.reason, request.sends, request.next_send_at = "", 0, now
        return transition

    def sent(self, request_id: str, now: float) -> RequestTransition | None:
        """One copy went out: schedule the next (a transition from the second copy on)."""
        request = self._require(request_id)
        if not request.open or request.direction is not SENT:
            return None
        request.sends += 1
        request.next_send_at = now + self.policy.resend_delay(request.sends, self._rng)
        if request.sends > 1:
            return self._apply(request, E.RESENT, now)
        return None

    def postpone(self, request_id: str, now: float) -> None:
        """Nothing could go now (the description is not found yet): due again on the
        schedule, not at once."""
        request = self._require(request_id)
        if request.open and request.direction is SENT:
            delay = self.policy.resend_delay(max(1, request.sends), self._rng)
            request.next_send_at = now + delay

    def cancel(self, request_id: str, now: float) -> RequestTransition:
        request = self._require(request_id)
        if request.direction is not SENT:
            raise JoinRequestError("only the requester can cancel a request")
        return self._close(request, E.CANCEL, now)

    def answered(
        self, request_id: str, now: float, *, accepted: bool, by: str, reason: str = ""
    ) -> RequestTransition:
        """A moderator's signed answer arrived (checked by the caller: answers.py)."""
        request = self._require(request_id)
        transition = self._close(request, E.ACCEPTED if accepted else E.DECLINED, now, reason)
        request.answered_by = by
        return transition

    def owner_seen(self, community_id: str, at: float) -> None:
        for request in self._requests.values():
            if request.community_id == community_id and request.direction is SENT:
                request.owner_last_seen = max(request.owner_last_seen or at, at)

    # ---- theirs -------------------------------------------------------------------------
    def received(
        self,
        request_id: str,
        community_id: str,
        requester: str,
        requester_link: str,
        message: str,
        expires_at: float,
        now: float,
    ) -> RequestTransition:
        request = self._requests.get(request_id)
        if request is not None:
            if request.direction is not RECEIVED or request.requester != requester:
                raise JoinRequestError("that request id belongs to another request")
            if request.open or request.state is RequestState.ACCEPTED:
                request.last_copy_at = now
                return self._apply(request, E.RECEIVE_COPY, now)
            event = E.RECEIVE if expires_at > now else E.RECEIVE_COPY
            transition = self._apply(request, event, now)
            request.expires_at, request.last_copy_at, request.reason = expires_at, now, ""
            return transition
        request = JoinRequest(
            request_id,
            community_id,
            RECEIVED,
            requester,
            requester_link=requester_link,
            message=message[:MAX_REQUEST_MESSAGE],
            created_at=now,
            expires_at=expires_at,
            last_copy_at=now,
        )
        transition = self._apply(request, E.RECEIVE, now)
        self._requests[request_id] = request
        return transition

    def accept(self, request_id: str, now: float, by: str) -> RequestTransition:
        request = self._require(request_id)
        if request.direction is not RECEIVED:
            raise JoinRequestError("a request we sent is answered by a moderator")
        transition = self._close(request, E.ACCEPT, now)
        request.answered_by = by
        return transition

    def decline(self, request_id: str, now: float, by: str, reason: str = "") -> RequestTransition:
        request = self._require(request_id)
        if request.direction is not RECEIVED:
            raise JoinRequestError("a request we sent is answered by a moderator")
        transition = self._close(request, E.DECLINE, now, reason)
        request.answered_by = by
        return transition

    def withdrawn(self, request_id: str, now: float) -> RequestTransition:
        return self._close(self._require(request_id), E.CANCELLED, now)

    # ---- time ---------------------------------------------------------------------------
    def due(
        self, now: float
    ) -> tuple[list[JoinRequest], list[tuple[JoinRequest, RequestTransition]]]:
        """(our requests to send again now, requests that just expired)."""
        resend: list[JoinRequest] = []
        expired: list[tuple[JoinRequest, RequestTransition]] = []
        for request in self._requests.values():
            if not request.open:
                continue
            if request.expires_at is not None and now >= request.expires_at:
                reason = _expiry_reason(request)
                expired.append((request, self._close(request, E.EXPIRE, now, reason)))
            elif (
                request.direction is SENT
                and request.next_send_at is not None
                and request.next_send_at <= now
            ):
                resend.append(request)
        return resend, expired

    def next_wakeup(self) -> float | None:
        times = [
            moment
            for request in self._requests.values()
            if request.open
            for moment in (
                request.next_send_at if request.direction is SENT else None,
                request.expires_at,
            )
            if moment is not None
        ]
        return min(times) if times else None

    # ---- internals ----------------------------------------------------------------------
    def _require(self, request_id: str) -> JoinRequest:
        request = self._requests.get(request_id)
        if request is None:
            raise JoinRequestError("there is no such join request")
        return request

    def _close(
        self, request: JoinRequest, event: RequestEvent, now: float, reason: str = ""
    ) -> RequestTransition:
        transition = self._apply(request, event, now, reason)
        request.reason = reason
        if not request.open:
            request.next_send_at = None
        return transition

    @staticmethod
    def _apply(
        request: JoinRequest, event: RequestEvent, now: float, reason: str = ""
    ) -> RequestTransition:
        try:
            new = TRANSITIONS[(request.direction, request.state, event)]
        except KeyError:
            raise JoinRequestError(IMPOSSIBLE[event]) from None
        transition = RequestTransition(request.state, new, event, now, reason)
        request.state = new
        request.history.append(transition)
        del request.history[1 : -(MAX_HISTORY - 1)]
        return transition


def _expiry_reason(request: JoinRequest) -> str:
    if request.direction is RECEIVED:
        return "nobody answered it before it expired"
    seen = (
        "the owner was not seen on the community's shard"
        if request.owner_last_seen is None
        else f"the owner was last seen at {request.owner_last_seen:.0f}"
    )
    return f"no owner or admin answered in {request.sends} sends; {seen}"


# ---- persistence ---------------------------------------------------------------------------
def request_to_json(request: JoinRequest) -> dict[str, Any]:
    return {
        "community_id": request.community_id,
        "direction": request.direction.value,
        "requester": request.requester,
        "requester_link": request.requester_link,
        "message": request.message,
        "state": request.state.value if request.state else None,
        "reason": request.reason,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "sends": request.sends,
        "next_send_at": request.next_send_at,
        "last_copy_at": request.last_copy_at,
        "owner_last_seen": request.owner_last_seen,
        "answered_by": request.answered_by,
        "history": [
            [t.old.value if t.old else None, t.new.value, t.event.value, t.at, t.reason]
            for t in request.history
        ],
    }


def request_from_json(request_id: str, data: dict[str, Any]) -> JoinRequest:
    """Raises JoinRequestError for data this version cannot read."""
    try:
        return JoinRequest(
            id=request_id,
            community_id=str(data["community_id"]),
            direction=Direction(data["direction"]),
            requester=str(data["requester"]),
            requester_link=str(data["requester_link"]),
            message=str(data["message"]),
            state=RequestState(data["state"]) if data["state"] else None,
            reason=str(data["reason"]),
            created_at=float(data["created_at"]),
            expires_at=data["expires_at"],
            sends=int(data["sends"]),
            next_send_at=data["next_send_at"],
            last_copy_at=data["last_copy_at"],
            owner_last_seen=data["owner_last_seen"],
            answered_by=str(data["answered_by"]),
            history=[
                RequestTransition(
                    RequestState(old) if old else None,
                    RequestState(new),
                    RequestEvent(event),
                    float(at),
                    str(reason),
                )
                for old, new, event, at, reason in data["history"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JoinRequestError(f"unreadable join request state: {exc}") from None
