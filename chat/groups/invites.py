"""Group invitations: one persisted request flow per invitation, in the style of
chat/contacts.py (the table below is the whole truth).

Both sides keep a flow for the same invitation (its id is the id of the `invited` change):

    sent      we invited a contact: the invitation (with the group's log) goes to them over
              Olm on our 1:1 topic, again and again on a visible schedule, until they answer,
              we withdraw it, it expires, or it reached nobody
    received  a contact invited us: it waits for our answer until it expires

States:

    invited    open: sent and waiting for the answer / received and waiting for ours
    joined     they joined (sent: their signed `joined` change arrived) / we joined
    declined   they declined (sent) / we declined (received)
    expired    nobody answered before the invitation's expiry
    cancelled  the inviter withdrew it (an admin removed the invitee before they answered)
    failed     sent only: no copy reached any peer within `max_unreached` sends (the reason
               says why, e.g. no peers); it can be sent again

Rules:
- A copy of an invitation we hold (a re-send, or one still on its way) changes nothing.
- The group's log decides membership: an answer that the log took counts even after the
  invitation expired or failed here (a late join is still a join), and a `joined` beats a
  withdrawal that crossed it only if the log says so (the messenger reports what it holds).
- Re-sends follow `InvitePolicy.resend_delay` until the invitation is answered or expires.
  An attempt that reached no peer counts toward `max_unreached`; one that reached a peer
  stops that count for good (the store keeps the invitation for the invitee).
- Sending again an invitation that failed or expired: a fresh schedule and budget (an
  expired one needs a new `invited` change first; the messenger makes it).

Sans-IO: times come in as arguments; the messenger persists each transition, then sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class InviteState(Enum):
    INVITED = "invited"
    JOINED = "joined"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


class InviteEvent(Enum):
    SEND = "send"  # we invite (or invite again after a failure / expiry)
    RESENT = "resent"  # a copy went out on the schedule
    UNREACHED = "unreached"  # the budget of sends that reached nobody is spent
    RECEIVE = "receive"  # an invitation arrived
    RECEIVE_COPY = "receive_copy"  # a copy of one we hold
    ACCEPT = "accept"  # we join
    ACCEPTED = "accepted"  # they joined
    DECLINE = "decline"  # we decline
    DECLINED = "declined"  # they declined
    CANCEL = "cancel"  # we withdraw it
    CANCELLED = "cancelled"  # the inviter withdrew it
    EXPIRE = "expire"


class Direction(Enum):
    SENT = "sent"
    RECEIVED = "received"


INVITED, JOINED = InviteState.INVITED, InviteState.JOINED
DECLINED, EXPIRED = InviteState.DECLINED, InviteState.EXPIRED
CANCELLED, FAILED = InviteState.CANCELLED, InviteState.FAILED
SENT, RECEIVED = Direction.SENT, Direction.RECEIVED
E = InviteEvent

TRANSITIONS: dict[tuple[Direction, InviteState | None, InviteEvent], InviteState] = {
    # ---- invitations we sent
    (SENT, None, E.SEND): INVITED,
    (SENT, INVITED, E.RESENT): INVITED,
    (SENT, INVITED, E.UNREACHED): FAILED,
    (SENT, INVITED, E.ACCEPTED): JOINED,
    (SENT, INVITED, E.DECLINED): DECLINED,
    (SENT, INVITED, E.CANCEL): CANCELLED,
    (SENT, INVITED, E.EXPIRE): EXPIRED,
    (SENT, FAILED, E.SEND): INVITED,  # sent again: a fresh budget
    (SENT, EXPIRED, E.SEND): INVITED,  # renewed (a new `invited` change)
    (SENT, FAILED, E.ACCEPTED): JOINED,  # it reached them after all (a store copy)
    (SENT, EXPIRED, E.ACCEPTED): JOINED,  # the log took their join
    (SENT, FAILED, E.DECLINED): DECLINED,
    (SENT, EXPIRED, E.DECLINED): DECLINED,
    (SENT, FAILED, E.CANCEL): CANCELLED,
    (SENT, EXPIRED, E.CANCEL): CANCELLED,
    (SENT, CANCELLED, E.ACCEPTED): JOINED,  # their join came first in the log
    (SENT, JOINED, E.ACCEPTED): JOINED,  # a duplicate
    (SENT, DECLINED, E.DECLINED): DECLINED,
    # ---- invitations we received
    (RECEIVED, None, E.RECEIVE): INVITED,
    (RECEIVED, INVITED, E.RECEIVE_COPY): INVITED,
    (RECEIVED, INVITED, E.ACCEPT): JOINED,
    (RECEIVED, INVITED, E.DECLINE): DECLINED,
    (RECEIVED, INVITED, E.CANCELLED): CANCELLED,
    (RECEIVED, INVITED, E.EXPIRE): EXPIRED,
    (RECEIVED, JOINED, E.RECEIVE_COPY): JOINED,
    (RECEIVED, DECLINED, E.RECEIVE_COPY): DECLINED,
    (RECEIVED, CANCELLED, E.RECEIVE_COPY): CANCELLED,
    (RECEIVED, EXPIRED, E.RECEIVE_COPY): EXPIRED,
    (RECEIVED, CANCELLED, E.CANCELLED): CANCELLED,
    (RECEIVED, EXPIRED, E.CANCELLED): CANCELLED,
}

IMPOSSIBLE: dict[InviteEvent, str] = {
    E.SEND: "that invitation is still open",
    E.RESENT: "only an open invitation is sent again",
    E.UNREACHED: "only an open invitation can fail",
    E.RECEIVE: "that invitation is known already",
    E.RECEIVE_COPY: "a copy of an invitation we do not hold",
    E.ACCEPT: "that invitation is no longer open",
    E.ACCEPTED: "they answered an invitation that is closed",
    E.DECLINE: "that invitation is no longer open",
    E.DECLINED: "they answered an invitation that is closed",
    E.CANCEL: "that invitation is no longer open",
    E.CANCELLED: "the inviter withdrew an invitation that is closed",
    E.EXPIRE: "only an open invitation can expire",
}
"""What the user is told when a step is not in the table."""

MAX_HISTORY = 32
"""Transitions kept per invitation: the first and the latest."""


class InviteError(Exception):
    """A step that is not possible now; the message is a sentence for the user."""


@dataclass(frozen=True, slots=True)
class InvitePolicy:
    lifetime: float = 7 * 24 * 3600.0
    """An invitation nobody answers expires after this long."""
    first_resend: float = 60.0
    factor: float = 3.0
    max_resend_delay: float = 6 * 3600.0
    jitter: float = 0.1
    max_unreached: int = 5
    """Sends that reached no peer before a sent invitation fails."""

    def resend_delay(self, sends: int, rng: random.Random) -> float:
        try:
            grown = self.first_resend * self.factor ** max(0, sends - 1)
        except OverflowError:
            grown = self.max_resend_delay
        return min(self.max_resend_delay, grown) * (1 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class InviteTransition:
    old: InviteState | None
    new: InviteState
    event: InviteEvent
    at: float
    details: dict[str, Any]


@dataclass
class Invite:
    id: str
    group_id: str
    direction: Direction
    peer: str
    """The invitee (sent) or the inviter (received): a chat key."""
    group_name: str = ""
    state: InviteState | None = None
    created_at: float = 0.0
    expires_at: float | None = None
    sends: int = 0
    reached: int = 0
    """Sends that reached at least one peer."""
    next_send_at: float | None = None
    reason: str | None = None
    log: list[bytes] = field(default_factory=list)
    """received: the group's log as the invitation carried it (signed changes)."""
    history: list[InviteTransition] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.state is INVITED


class Invites:
    """Every invitation of the profile, by id. Sans-IO."""

    def __init__(self, policy: InvitePolicy | None = None, rng: random.Random | None = None):
        self.policy = policy or InvitePolicy()
        self._rng = rng or random.Random()
        self._invites: dict[str, Invite] = {}

    def get(self, invite_id: str) -> Invite | None:
        return self._invites.get(invite_id)

    def all(self) -> list[Invite]:
        return list(self._invites.values())

    def restore(self, invite: Invite) -> None:
        self._invites[invite.id] = invite

    def open_for(self, group_id: str, peer: str) -> Invite | None:
        """Our open (or failed) sent invitation of this person to this group."""
        for invite in self._invites.values():
            ours = (invite.group_id, invite.peer, invite.direction) == (group_id, peer, SENT)
            if ours and invite.state in (INVITED, FAILED):
                return invite
        return None

    # ---- our invitations -----------------------------------------------------------------
    def send(
        self, invite_id: str, group_id: str, peer: str, name: str, expires_at: float, now: float
    ) -> InviteTransition:
        """We invite them (again). The caller sends the invitation and reports `sent`."""
        invite = self._invites.get(invite_id) or Invite(invite_id, group_id, SENT, peer, name)
        transition = self._apply(invite, E.SEND, now, {})
        self._invites[invite_id] = invite
        invite.group_name = name or invite.group_name
        invite.created_at = invite.created_at or now
        invite.expires_at, invite.reason = expires_at, None
        invite.sends = invite.reached = 0
        invite.next_send_at = now
        return transition

    def sent(
        self, invite_id: str, now: float, *, reached: bool, reason: str = ""
    ) -> InviteTransition | None:
        """One copy went out (or not): schedule the next; FAILED when the budget of sends
        that reached nobody is spent (the transition is returned then, else None)."""
        invite = self._require(invite_id)
        if not invite.open:
            return None
        invite.sends += 1
        invite.reached += int(reached)
        if not reached and invite.reached == 0 and invite.sends >= self.policy.max_unreached:
            failed = self._apply(invite, E.UNREACHED, now, {"reason": reason})
            invite.reason = f"the invitation reached nobody in {invite.sends} sends: {reason}"
            invite.next_send_at = None
            return failed
        invite.next_send_at = now + self.policy.resend_delay(invite.sends, self._rng)
        if invite.sends > 1:
            return self._apply(invite, E.RESENT, now, {"reached": reached})
        return None

    def cancel(self, invite_id: str, now: float) -> InviteTransition:
        return self._close(invite_id, E.CANCEL, now)

    def answered(self, invite_id: str, now: float, *, accepted: bool) -> InviteTransition:
        """They joined or declined (the log took their signed change)."""
        return self._close(invite_id, E.ACCEPTED if accepted else E.DECLINED, now)

    # ---- invitations to us ---------------------------------------------------------------
    def received(
        self,
        invite_id: str,
        group_id: str,
        inviter: str,
        name: str,
        expires_at: float,
        log: list[bytes],
        now: float,
    ) -> InviteTransition:
        invite = self._invites.get(invite_id)
        if invite is not None:
            if invite.direction is not RECEIVED:
                raise InviteError("that invitation is one we sent")
            return self._apply(invite, E.RECEIVE_COPY, now, {})
        invite = Invite(invite_id, group_id, RECEIVED, inviter, name, created_at=now)
        transition = self._apply(invite, E.RECEIVE, now, {})
        invite.expires_at, invite.log = expires_at, list(log)
        self._invites[invite_id] = invite
        return transition

    def accept(self, invite_id: str, now: float) -> InviteTransition:
        return self._close(invite_id, E.ACCEPT, now)

    def decline(self, invite_id: str, now: float) -> InviteTransition:
        return self._close(invite_id, E.DECLINE, now)

    def withdrawn(self, invite_id: str, now: float) -> InviteTransition:
        return self._close(invite_id, E.CANCELLED, now)

    # ---- time ----------------------------------------------------------------------------
    def due(self, now: float) -> tuple[list[Invite], list[tuple[Invite, InviteTransition]]]:
        """(sent invitations to send again now, invitations that just expired)."""
        resend: list[Invite] = []
        expired: list[tuple[Invite, InviteTransition]] = []
        for invite in self._invites.values():
            if not invite.open:
                continue
            if invite.expires_at is not None and now >= invite.expires_at:
                expired.append((invite, self._close(invite.id, E.EXPIRE, now)))
            elif invite.direction is SENT and _due(invite.next_send_at, now):
                resend.append(invite)
        return resend, expired

    def next_wakeup(self) -> float | None:
        times = [
            t
            for i in self._invites.values()
            if i.open
            for t in (i.next_send_at if i.direction is SENT else None, i.expires_at)
            if t is not None
        ]
        return min(times) if times else None

    # ---- internals -----------------------------------------------------------------------
    def _require(self, invite_id: str) -> Invite:
        invite = self._invites.get(invite_id)
        if invite is None:
            raise InviteError("there is no such invitation")
        return invite

    def _close(self, invite_id: str, event: InviteEvent, now: float) -> InviteTransition:
        invite = self._require(invite_id)
        transition = self._apply(invite, event, now, {})
        if not invite.open:
            invite.next_send_at = None
        return transition

    @staticmethod
    def _apply(
        invite: Invite, event: InviteEvent, now: float, details: dict[str, Any]
    ) -> InviteTransition:
        try:
            new = TRANSITIONS[(invite.direction, invite.state, event)]
        except KeyError:
            raise InviteError(IMPOSSIBLE[event]) from None
        transition = InviteTransition(invite.state, new, event, now, details)
        invite.state = new
        invite.history.append(transition)
        del invite.history[1 : -(MAX_HISTORY - 1)]
        return transition


def _due(at: float | None, now: float) -> bool:
    return at is not None and at <= now


# ---- persistence -------------------------------------------------------------------------
def invite_to_json(invite: Invite) -> dict[str, Any]:
    return {
        "group_id": invite.group_id,
        "direction": invite.direction.value,
        "peer": invite.peer,
        "group_name": invite.group_name,
        "state": invite.state.value if invite.state else None,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "sends": invite.sends,
        "reached": invite.reached,
        "next_send_at": invite.next_send_at,
        "reason": invite.reason,
        "log": [change.hex() for change in invite.log],
        "history": [
            [t.old.value if t.old else None, t.new.value, t.event.value, t.at, t.details]
            for t in invite.history
        ],
    }


def invite_from_json(invite_id: str, data: dict[str, Any]) -> Invite:
    """Raises InviteError for data this version cannot read."""
    try:
        return Invite(
            id=invite_id,
            group_id=str(data["group_id"]),
            direction=Direction(data["direction"]),
            peer=str(data["peer"]),
            group_name=str(data["group_name"]),
            state=InviteState(data["state"]) if data["state"] else None,
            created_at=float(data["created_at"]),
            expires_at=data["expires_at"],
            sends=int(data["sends"]),
            reached=int(data["reached"]),
            next_send_at=data["next_send_at"],
            reason=data["reason"],
            log=[bytes.fromhex(change) for change in data["log"]],
            history=[
                InviteTransition(
                    InviteState(old) if old else None,
                    InviteState(new),
                    InviteEvent(event),
                    float(at),
                    dict(details),
                )
                for old, new, event, at, details in data["history"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InviteError(f"unreadable invitation state: {exc}") from None
