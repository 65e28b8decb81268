"""What a moderator redoes when the version they signed lost the tie to a rival of the same
number (book.py): their change is not in the kept version, so they make it again on top of
it. Only the changes that matter to who is in the community are redone: members removed
(kicked or gone), banned and added. A rename or a channel change that lost is not redone
(the moderator sees the kept version and may make it again).

Sans-IO: `lost_changes` compares the version we signed with the one it followed and the
one that won; the messenger applies each step through its moderation path."""

from __future__ import annotations

from dataclasses import dataclass

from chat.communities.description import Description, Member


@dataclass(frozen=True, slots=True)
class LostChanges:
    removed: tuple[str, ...] = ()
    """Members we removed who are still in the kept version (chat keys)."""
    banned: tuple[str, ...] = ()
    """Keys we banned that the kept version does not ban."""
    added: tuple[Member, ...] = ()
    """Members we added who are not in the kept version (and not banned by it)."""

    def __bool__(self) -> bool:
        return bool(self.removed or self.banned or self.added)


def lost_changes(previous: Description, ours: Description, kept: Description) -> LostChanges:
    """Our `ours` (following `previous`) lost to `kept`: what of it `kept` lacks."""
    before = {m.chat_key for m in previous.members}
    mine = {m.chat_key for m in ours.members}
    now_in = {m.chat_key for m in kept.members}
    banned = tuple(sorted((ours.banned - previous.banned) - kept.banned))
    removed = tuple(sorted(key for key in (before - mine) & now_in if key not in banned))
    added = tuple(
        member
        for member in ours.members
        if member.chat_key not in before
        and member.chat_key not in now_in
        and member.chat_key not in kept.banned
    )
    return LostChanges(removed, banned, added)
