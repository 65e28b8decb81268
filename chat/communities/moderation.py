"""What a moderator's action makes of the description: the next version (unsigned; the
messenger signs it with the owner key, or an admin's chat key) and what must rotate.

- kick (and a member's leaving): the member is out and a new epoch begins (a new content key,
  sent over Olm to every remaining member): they read nothing that follows.
- ban: as kick, the member's key is on the banned list (their requests are refused), and the
  shard's protection key is replaced: the new public key travels in the signed description,
  the new secret goes to every remaining member with the new content key, so the banned one
  can no longer publish on the shard at all.
- roles, channels, name and about: a new version, no rotation.

Every step checks the actor's role first (roles.py); a refused step raises PermissionRefused
or ModerationError and returns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.communities.description import (
    MAX_ABOUT,
    MAX_CHANNELS,
    MAX_MEMBERS,
    Channel,
    Description,
    JoinPolicy,
    Member,
    clean_name,
    clean_text,
    new_channel_id,
)
from chat.communities.roles import Action, Role, check
from chat.identity import IdentityError, parse_chat_key
from chat.waku.protected import ShardKeyPair


class ModerationError(ValueError):
    """A step that cannot be taken as asked; a sentence for the user."""


@dataclass(frozen=True, slots=True)
class Outcome:
    description: Description
    """The next version, unsigned."""
    new_epoch: bool = False
    """A new content key must go to every remaining member before the next message."""
    new_protection: ShardKeyPair | None = None
    """The shard's new key pair (its public half is in `description`)."""


def _subject(description: Description, subject: str) -> Member:
    member = description.member(subject)
    if member is None:
        raise ModerationError("that person is not a member of the community")
    return member


def add_member(description: Description, actor: str, member: Member, now: float) -> Outcome:
    """An accepted join request: the requester becomes a member."""
    check(description.role_of(actor), Action.ANSWER_REQUEST)
    if member.chat_key in description.banned:
        raise ModerationError("that person is banned from the community")
    if description.member(member.chat_key) is not None:
        raise ModerationError("that person is a member already")
    if len(description.members) >= MAX_MEMBERS:
        raise ModerationError(f"a community has at most {MAX_MEMBERS} members")
    joined = Member(member.chat_key, member.display_name, Role.MEMBER)
    return Outcome(description.next(now, members=(*description.members, joined)))


def kick(description: Description, actor: str, subject: str, now: float) -> Outcome:
    target = _subject(description, subject)
    check(description.role_of(actor), Action.KICK, target.role)
    members = tuple(m for m in description.members if m.chat_key != subject)
    return Outcome(
        description.next(now, members=members, epoch=description.epoch + 1), new_epoch=True
    )


def leave(description: Description, subject: str, now: float) -> Outcome:
    """A member's own departure, as a moderator records it (the owner cannot leave: they
    would take the owner key with them)."""
    target = _subject(description, subject)
    if target.role is Role.OWNER:
        raise ModerationError("the owner cannot leave their community")
    members = tuple(m for m in description.members if m.chat_key != subject)
    return Outcome(
        description.next(now, members=members, epoch=description.epoch + 1), new_epoch=True
    )


def ban(description: Description, actor: str, subject: str, now: float) -> Outcome:
    """Ban a member (or someone not yet a member, to refuse their requests)."""
    try:
        parse_chat_key(subject)
    except IdentityError as exc:
        raise ModerationError(str(exc)) from None
    target = description.member(subject)
    check(description.role_of(actor), Action.BAN, target.role if target else Role.MEMBER)
    if subject in description.banned:
        raise ModerationError("that person is banned already")
    members = tuple(m for m in description.members if m.chat_key != subject)
    protection = ShardKeyPair.generate() if description.protected else None
    next_version = description.next(
        now,
        members=members,
        banned=description.banned | {subject},
        epoch=description.epoch + 1,
        protection_key=protection.public_key.to_bytes() if protection else b"",
    )
    return Outcome(next_version, new_epoch=True, new_protection=protection)


def set_role(
    description: Description,
    actor: str,
    subject: str,
    role: Role,
    now: float,
    *,
    contact_link: str = "",
) -> Outcome:
    """Grant or revoke admin (owner only; ownership itself does not move this way).
    `contact_link`: a new admin's, so that join requests reach them too."""
    target = _subject(description, subject)
    check(description.role_of(actor), Action.SET_ROLE, target.role)
    if role is Role.OWNER:
        raise ModerationError("ownership cannot be granted")
    if target.role is role:
        raise ModerationError(f"that member is {role.label} already")
    link = (contact_link or target.contact_link) if role is Role.ADMIN else ""
    if role is Role.ADMIN and not link:
        # Requests go to an admin, and members take keys from them, by that link.
        raise ModerationError("we hold no contact link of theirs to make them an admin")
    members = tuple(
        Member(m.chat_key, m.display_name, role, link) if m.chat_key == subject else m
        for m in description.members
    )
    return Outcome(description.next(now, members=members))


def add_channel(description: Description, actor: str, name: str, now: float) -> Outcome:
    check(description.role_of(actor), Action.EDIT_CHANNELS)
    cleaned = clean_name(name, "a channel name")
    if any(channel.name == cleaned for channel in description.channels):
        raise ModerationError(f"there is a channel named {cleaned!r} already")
    if len(description.channels) >= MAX_CHANNELS:
        raise ModerationError(f"a community has at most {MAX_CHANNELS} channels")
    channel = Channel(new_channel_id(description.id), cleaned)
    return Outcome(description.next(now, channels=(*description.channels, channel)))


def remove_channel(description: Description, actor: str, channel_id: str, now: float) -> Outcome:
    check(description.role_of(actor), Action.EDIT_CHANNELS)
    if description.channel(channel_id) is None:
        raise ModerationError("the community has no such channel")
    channels = tuple(c for c in description.channels if c.id != channel_id)
    return Outcome(description.next(now, channels=channels))


def edit(
    description: Description,
    actor: str,
    now: float,
    *,
    name: str | None = None,
    about: str | None = None,
    join_policy: JoinPolicy | None = None,
) -> Outcome:
    check(description.role_of(actor), Action.EDIT_DESCRIPTION)
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = clean_name(name)
    if about is not None:
        changes["about"] = clean_text(about, MAX_ABOUT, "the about text", multiline=True)
    if join_policy is not None:
        changes["join_policy"] = join_policy
    if not changes:
        raise ModerationError("nothing to change")
    return Outcome(description.next(now, **changes))
