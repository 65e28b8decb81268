"""Roles in a community and the rules for who may do what (one table, checked everywhere).

- The owner holds the community's owner key: only they grant and revoke admin, and nobody
  may kick, ban or demote them. Only they move the community to another shard (cluster and
  index) or change the shard's protection key, with one exception below.
- Admins accept and decline join requests, kick and ban members, create and remove channels
  and edit the description's name and about text; they cannot act on another admin or the
  owner (a removed admin would otherwise be one admin's decision). A ban replaces the
  shard's protection key (the banned one held the old secret), so the description of an
  admin's ban carries a new key: that is the only key change an admin signs, and never one
  that turns the protection on or off.
- Members read and write in the channels.
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    OWNER = 1
    ADMIN = 2
    MEMBER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Role:
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise PermissionRefused(
                f"{label[:20]!r} is not a role (owner, admin, member)"
            ) from None


class Action(Enum):
    ANSWER_REQUEST = "answer join requests"
    KICK = "remove members"
    BAN = "ban members"
    EDIT_CHANNELS = "create or remove channels"
    EDIT_DESCRIPTION = "edit the description"
    SET_ROLE = "grant or revoke admin"
    MOVE_SHARD = "change the community's shard or its protection key"
    SEND = "write in channels"


class PermissionRefused(Exception):
    """A step the actor's role does not allow; a sentence for the user."""


MODERATORS = frozenset({Role.OWNER, Role.ADMIN})

ALLOWED: dict[Action, frozenset[Role]] = {
    Action.ANSWER_REQUEST: MODERATORS,
    Action.KICK: MODERATORS,
    Action.BAN: MODERATORS,
    Action.EDIT_CHANNELS: MODERATORS,
    Action.EDIT_DESCRIPTION: MODERATORS,
    Action.SET_ROLE: frozenset({Role.OWNER}),
    Action.MOVE_SHARD: frozenset({Role.OWNER}),
    Action.SEND: frozenset(Role),
}
"""Which roles may take each action at all."""

ACTS_ON_OTHERS = frozenset({Action.KICK, Action.BAN, Action.SET_ROLE})


def check(actor: Role | None, action: Action, subject: Role | None = None) -> None:
    """Raise PermissionRefused unless `actor` may take `action` (on a member whose role is
    `subject`, for kick, ban and role changes). `None`: not a member."""
    if actor is None:
        raise PermissionRefused(f"only members may {action.value}")
    if actor not in ALLOWED[action]:
        allowed = " or ".join(sorted(role.label for role in ALLOWED[action]))
        raise PermissionRefused(f"only the {allowed} may {action.value}")
    if action in ACTS_ON_OTHERS:
        if subject is Role.OWNER:
            raise PermissionRefused(f"nobody may {action.value} on the owner")
        if subject is Role.ADMIN and actor is not Role.OWNER:
            raise PermissionRefused(f"only the owner may {action.value} on an admin")


def allowed(actor: Role | None, action: Action, subject: Role | None = None) -> bool:
    try:
        check(actor, action, subject)
    except PermissionRefused:
        return False
    return True
