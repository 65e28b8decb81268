"""The private groups the messenger holds: each group's membership log and Megolm sessions
in memory, and their saving (a `CryptoState` of persist.py: written with the Olm sessions,
before the wire and in the batches)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.groups import changes as ch
from chat.groups.changes import Change, ChangeError, ChangeKind
from chat.groups.keys import GroupKeys, RotationPolicy
from chat.groups.log import Added, GroupState, Member, MembershipLog, MemberState
from chat.identity import ContactLink
from storage.repositories.groups import StoredSession
from storage.store import Store

log = logging.getLogger(__name__)

NOTICE_ENVELOPES = 5
"""Envelopes that carry a notice (a removal, for the removed member) after it was made."""


@dataclass
class Group:
    log: MembershipLog
    keys: GroupKeys
    own: str
    """Our chat key."""
    undecryptable: int = 0
    """Messages on the group's topic we could not decrypt (sent after we left or before we
    joined, or whose key has not reached us): counted and logged, nothing shown."""
    unsaved: list[Change] = field(default_factory=list)
    notices: dict[str, tuple[list[Change], int]] = field(default_factory=dict)
    """Per member, changes to hand them pairwise with our next envelopes, and how many more."""
    links: dict[str, ContactLink] = field(default_factory=dict)
    """Members' links fresher than the log's (from their shares), by chat key."""
    moved: bool = False
    """The member list or name changed since the messenger last reacted to it."""
    lines: list[Change] = field(default_factory=list)
    """Changes learned (by any path) to show as system lines in the conversation."""
    horizon: list[str] = field(default_factory=list)
    """SDS ids members told us we cannot read (sent before we had their key), to hand to the
    pipeline with the next frame we open."""

    @property
    def id(self) -> str:
        return self.log.group_id

    @property
    def state(self) -> GroupState:
        return self.log.state

    @property
    def joined(self) -> bool:
        return self.state.is_member(self.own)

    def learn(self, change: Change, *, untrusted: bool = False) -> Added:
        """Put a verified change in the log (LogError if it cannot take it); what it changed
        moves the sessions: ours rotates past anyone who left."""
        before = self.state
        added = self.log.add(change, untrusted=untrusted)
        if added.new:
            self.unsaved.append(change)
        after = self.state
        if after != before:
            self.moved = True
            self.keys.departed(before.joined() - after.joined())
            if self.own in after.joined() and self.own not in before.joined():
                self.keys.rejoined()
        return added

    def link_of(self, chat_key: str) -> ContactLink | None:
        if chat_key in self.links:
            return self.links[chat_key]
        member = self.state.member(chat_key)
        return member.link if member is not None else None

    def member_by_identity(self, identity_key: bytes, *, invited: bool = True) -> Member | None:
        """The member (joined, or `invited`) whose Olm identity key this is."""
        states = {MemberState.JOINED, MemberState.INVITED} if invited else {MemberState.JOINED}
        for member in self.state.members.values():
            link = member.link
            if member.state in states and link is not None and link.identity_key == identity_key:
                return member
        return None

    def proofs(self) -> list[Change]:
        """The changes that make us a member, for members who may not have them yet (our
        invitation and our join; nothing for the creator, whose root everyone holds)."""
        me = self.state.member(self.own)
        if me is None or self.own == self.state.creator or not me.invite_id:
            return []
        found = [
            c
            for c in self.log.changes()
            if c.id == me.invite_id
            or (
                c.kind is ChangeKind.JOINED and c.author == self.own and c.invite_id == me.invite_id
            )
        ]
        return found[-2:]

    def since_invitation(self, chat_key: str) -> list[Change]:
        """What a member's copy of the log may lack (it was taken when their latest
        invitation was made): the changes after it, those made at the same time (crossed),
        and, if we invited them, every change we learned after inviting them."""
        member = self.state.member(chat_key)
        invite_id = member.invite_id if member is not None else None
        invitation = next((c for c in self.log.changes() if c.id == invite_id), None)
        if invitation is None:
            return []
        return self.log.unknown_at(invitation, ours=invitation.author == self.own)

    def tell_our_invitees(self, change: Change) -> None:
        """A change new to us: members we invited, whose copy of the log cannot hold it
        (it sorts before their invitation but came to us after), get it pairwise. Those
        still to join get it with our key when they do (`since_invitation`)."""
        by_id = {c.id: c for c in self.log.changes()}
        for member in self.state.members.values():
            invitation = by_id.get(member.invite_id)
            if (
                member.state is MemberState.JOINED
                and member.chat_key not in (self.own, change.author)
                and invitation is not None
                and invitation.author == self.own
                and change.order < invitation.order
            ):
                self.notify(member.chat_key, change)

    def needs_our_key(self, now: float) -> bool:
        """A member has not got our current session's key (a new member): our next envelope
        should carry it."""
        others = self.state.joined() - {self.own}
        session = self.keys.outbound
        if session is None:
            return bool(others)
        return bool(session.needs_key(others, now, self.keys.policy.reshare_after))

    def notify(self, chat_key: str, change: Change) -> None:
        """Hand `change` to this member pairwise with our next few envelopes."""
        held, _ = self.notices.get(chat_key, ([], 0))
        self.notices[chat_key] = ([*held, change][-4:], NOTICE_ENVELOPES)

    def take_notices(self) -> dict[str, list[Change]]:
        taken: dict[str, list[Change]] = {}
        for chat_key, (held, left) in list(self.notices.items()):
            taken[chat_key] = held
            if left <= 1:
                del self.notices[chat_key]
            else:
                self.notices[chat_key] = (held, left - 1)
        return taken


@dataclass(frozen=True)
class _GroupWrite:
    group_id: str
    changes: list[Change]
    sessions: dict[str, tuple[str, dict[str, Any]]]
    deleted: list[str]
    marked: set[str]


class Groups:
    """Every group we are or were in, by id; their saving."""

    def __init__(self, pickle_key: bytes, policy: RotationPolicy) -> None:
        self._key = pickle_key
        self.policy = policy
        self._groups: dict[str, Group] = {}

    def get(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def add(self, group: Group) -> None:
        self._groups[group.id] = group

    def all(self) -> list[Group]:
        return list(self._groups.values())

    def new(self, log_: MembershipLog, own: str) -> Group:
        group = Group(log_, GroupKeys(log_.group_id, own, self.policy), own)
        group.unsaved = log_.changes()
        self.add(group)
        return group

    def load(
        self, own: str, logs: Mapping[str, list[bytes]], sessions: Iterable[StoredSession]
    ) -> None:
        """The groups as the profile kept them; a change or session this version cannot read
        is skipped (logged)."""
        for group_id, signed in logs.items():
            decoded: list[Change] = []
            for data in signed:
                try:
                    decoded.append(ch.decode_change(data, group_id))
                except ChangeError as exc:
                    log.warning("group %s: a kept change does not decode (%s)", group_id, exc)
            try:
                log_ = MembershipLog.from_changes(decoded)
            except ValueError as exc:
                log.error("group %s: its log is unreadable (%s); skipped", group_id, exc)
                continue
            self.add(Group(log_, GroupKeys(group_id, own, self.policy), own))
        for row in sessions:
            group = self._groups.get(row.group_id)
            if group is None:
                continue
            try:
                group.keys.restore(row.session_id, row.owner, row.state, self._key)
            except Exception as exc:  # vodozemac's PickleException, or a damaged row
                log.error("group %s: a session row is unreadable (%s)", row.group_id, exc)
        for group in self._groups.values():
            group.keys.changed.clear()  # as loaded (older own sessions' rows go with a save)
            group.moved = False

    # ---- CryptoState ---------------------------------------------------------------------
    def take_changes(self) -> list[_GroupWrite]:
        writes: list[_GroupWrite] = []
        for group in self._groups.values():
            changed, dropped = group.keys.take_changed()
            marked = changed | dropped
            if not marked and not group.unsaved:
                continue
            rows: dict[str, tuple[str, dict[str, Any]]] = {}
            deleted: list[str] = []
            for session_id in marked:
                row = group.keys.row(session_id, self._key)
                if row is None:
                    deleted.append(session_id)
                else:
                    rows[session_id] = row
            writes.append(_GroupWrite(group.id, group.unsaved, rows, deleted, marked))
            group.unsaved = []
        return writes

    def write_changes(self, store: Store, changes: list[_GroupWrite], now_ms: int) -> None:
        for write in changes:
            store.groups.add_changes(
                write.group_id, [(c.id, c.lamport, c.signed) for c in write.changes], now=now_ms
            )
            store.groups.save_sessions(write.group_id, write.sessions, write.deleted, now=now_ms)

    def changes_not_saved(self, changes: list[_GroupWrite]) -> None:
        for write in changes:
            group = self._groups.get(write.group_id)
            if group is not None:
                group.unsaved[:0] = write.changes
                group.keys.changed |= write.marked
