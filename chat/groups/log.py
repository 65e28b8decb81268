"""A private group's membership as a log of signed changes, and the member list it yields.

Every member keeps the same set of changes and reads it the same way, so every member ends
with the same member list, admins and name, whatever order the changes arrived in:

- Order: changes are sorted by (lamport, change id). An author gives a new change the log's
  highest lamport + 1, so a change comes after every change its author had seen; changes
  made concurrently (crossed) are ordered by their ids, the same on every member.
- State: the member list is the result of applying the changes in that order to an empty
  group, each checked against the rules below *at its place in the order*. A change that
  breaks a rule there is ignored (it stays in the log: a change arriving late may come
  before it and make it valid, and every member must keep the same set).
- A change arriving late is put in its place and the state is computed again; so is one that
  arrives twice (once: changes are kept by id).

- Parents: a change names its author's log heads (changes.py); its causal past is those
  and everything they follow. A change whose parents are not all here, or not all before
  it, waits (ignored) until they are.
- Removals void what the removed made without knowing of them (concurrent changes):
  otherwise a removed admin could sign changes at a lamport below their removal, where they
  were still an admin; so does a `left`, of what its author made beside it. A removal is
  judged in its own causal past; they are settled the most senior admin's first (`_fold`,
  docs/protocol.md).

Rules (checked at the change's place in the order):
- created: the root. Its author (the creator) is the first member and the first admin; the
  group id is the hash of this change. There is exactly one; another is ignored.
- invited: by an admin; the invitee is not a member and has no open invitation (one past its
  expiry may be renewed); at most MAX_MEMBERS people are members or invited.
- joined / declined: by the invitee, naming their current invitation, no later than its
  expiry (by the joiner's own clock: every member judges the same change the same way).
- invited / joined: the link's Olm identity key is no other member's or invitee's. Shares
  and frames are attributed by that key (a link is signed by its chat key only, so anyone
  can put another's Olm key in theirs): two people with one key would let the first named
  take the other's messages as theirs and have them refused.
- left: by a member, about themselves. An admin who leaves is no longer one.
- removed: by an admin, of a member or an invitee; never the creator (who may leave).
- renamed: by an admin. admin_granted: by an admin, to a member who is not one yet.
- The log holds at most MAX_LOG_ENTRIES changes; a change beyond that is refused.
- A change from the network that is ignored at its place is kept only if its author is a
  member or invitee and has fewer than MAX_IGNORED_PER_AUTHOR ignored changes in the log
  (`add(..., untrusted=True)`); otherwise it is refused and not kept. Without this, one
  member (or invitee) could fill the log with changes that do nothing, signed by themselves
  or by made-up keys, and the group could take no change ever again, not even their
  removal. A legitimate change refused this way (its author's invitation not known yet)
  comes again with its author's re-sends.

Sans-IO: no clock (times come with the changes, and `now` with a view), no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from chat.groups.changes import MAX_PARENTS, Change, ChangeError, ChangeKind
from chat.identity import ContactLink

MAX_MEMBERS = 50
"""Members and invitees of a group at one time. A rotation costs one Olm message per member in
one envelope: 50 keep it near 25 KB, and the whole log fits one invitation (docs/protocol.md)."""
MAX_IGNORED_PER_AUTHOR = 8
"""Ignored changes by one author a log keeps from the network (crossed changes of an honest
admin are a few at most)."""
MAX_LOG_ENTRIES = 250
"""Changes one log holds. An invitation carries the whole log inside one WakuMessage (under
150 KiB): 250 changes of at most ~500 bytes each stay well under it."""


DEPARTURES = (ChangeKind.REMOVED, ChangeKind.LEFT)
"""The changes that void what their subject made concurrently (not knowing of them)."""
LEAVING_FIRST = (-1, "")
"""A `left` is settled before any removal (the creator's seniority is (0, root id))."""


class MemberState(Enum):
    INVITED = "invited"
    JOINED = "joined"
    DECLINED = "declined"
    LEFT = "left"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Member:
    chat_key: str
    state: MemberState
    link: ContactLink | None
    link_text: str = ""
    admin: bool = False
    invite_id: str = ""
    """Their latest invitation."""
    invited_by: str = ""
    expires_at: float | None = None
    since: float = 0.0
    """When the state began (the change's own time)."""

    @property
    def display_name(self) -> str:
        return self.link.display_name if self.link is not None else ""

    def state_at(self, now: float) -> str:
        """As shown: an invitation past its expiry reads 'expired'."""
        expires_at = self.expires_at
        if self.state is MemberState.INVITED and expires_at is not None and now > expires_at:
            return "expired"
        return self.state.value


@dataclass(frozen=True)
class GroupState:
    group_id: str
    name: str
    creator: str
    members: dict[str, Member] = field(default_factory=dict)
    """Everyone the log names, by chat key, in the order they first appeared."""

    def member(self, chat_key: str) -> Member | None:
        return self.members.get(chat_key)

    def is_member(self, chat_key: str) -> bool:
        found = self.members.get(chat_key)
        return found is not None and found.state is MemberState.JOINED

    def joined(self) -> frozenset[str]:
        return frozenset(k for k, m in self.members.items() if m.state is MemberState.JOINED)

    def admins(self) -> list[str]:
        return [k for k, m in self.members.items() if m.admin]

    def is_admin(self, chat_key: str) -> bool:
        found = self.members.get(chat_key)
        return found is not None and found.admin

    def present(self) -> int:
        """Members and invitees: what MAX_MEMBERS bounds."""
        return sum(
            1 for m in self.members.values() if m.state in (MemberState.JOINED, MemberState.INVITED)
        )


class LogError(ValueError):
    """The log cannot take a change (full, or not this group's); a sentence."""


@dataclass(frozen=True, slots=True)
class Added:
    change: Change
    new: bool
    """False for a change the log already held."""
    ignored: str | None
    """Why the change has no effect at its place in the order (None: it applies)."""


class MembershipLog:
    """The changes of one group, in order, and the state they yield."""

    def __init__(self, root: Change) -> None:
        if root.kind is not ChangeKind.CREATED:
            raise LogError("a group's log begins with its 'created' change")
        self.group_id = root.group_id
        self._changes: list[Change] = [root]
        self._ids: set[str] = {root.id}
        self._arrival: dict[str, int] = {root.id: 0}
        """Per change id, when it came into this log (0, 1, 2, ...): what an invitation we
        made could not carry is what came after it."""
        self.verdicts: dict[str, str | None] = {}
        """Per change id, why it is ignored (None: it applies)."""
        self.state = self._fold()

    @classmethod
    def from_changes(cls, changes: Iterable[Change]) -> MembershipLog:
        """A log from changes in any order, taken as their arrival order; LogError if the root
        is missing or they belong to different groups (changes beyond the bound are dropped,
        the latest first)."""
        given = list(changes)
        roots = [c for c in given if c.kind is ChangeKind.CREATED and c.id and c.lamport == 0]
        root = next((c for c in roots if all(o.group_id == c.group_id for o in given)), None)
        if root is None:
            raise LogError("these changes are not one group's log")
        log = cls(root)
        rest = sorted((c for c in given if c.id != root.id), key=lambda c: c.order)
        kept = {c.id for c in rest[: MAX_LOG_ENTRIES - 1]}
        for change in given:
            if change.id in kept and change.id not in log._ids:
                log._insert(change)
        log.state = log._fold()
        return log

    def __len__(self) -> int:
        return len(self._changes)

    def __contains__(self, change_id: str) -> bool:
        return change_id in self._ids

    def changes(self) -> list[Change]:
        return list(self._changes)

    @property
    def root(self) -> Change:
        return self._changes[0]

    def next_lamport(self) -> int:
        return max(c.lamport for c in self._changes) + 1

    def add(self, change: Change, *, untrusted: bool = False) -> Added:
        """Put a verified change in its place and compute the state again. `untrusted`: it
        came from the network, and is refused (LogError, not kept) if it is ignored at its
        place and its author may not add more that do nothing (the module's rules)."""
        if change.group_id != self.group_id:
            raise LogError("a membership change of another group")
        if change.id in self._ids:
            return Added(change, new=False, ignored=self.verdicts.get(change.id))
        if len(self._changes) >= MAX_LOG_ENTRIES:
            raise LogError(f"the group's log is full ({MAX_LOG_ENTRIES} changes)")
        self._insert(change)
        self.state = self._fold()
        ignored = self.verdicts.get(change.id)
        if untrusted and ignored is not None and not self._may_keep_ignored(change):
            self._withdraw(change)
            raise LogError(f"a change that does nothing ({ignored}), not kept")
        return Added(change, new=True, ignored=ignored)

    def _may_keep_ignored(self, change: Change) -> bool:
        author = self.state.member(change.author)
        if author is None or author.state not in (MemberState.JOINED, MemberState.INVITED):
            return False
        theirs = sum(
            1
            for c in self._changes
            if c.author == change.author and c.id != change.id and self.verdicts.get(c.id)
        )
        return theirs < MAX_IGNORED_PER_AUTHOR

    def _withdraw(self, change: Change) -> None:
        """Undo `_insert` of the change that came last."""
        self._changes.remove(change)
        self._ids.discard(change.id)
        del self._arrival[change.id]
        self.state = self._fold()

    def _insert(self, change: Change) -> None:
        keys = [c.order for c in self._changes]
        self._changes.insert(bisect.bisect(keys, change.order), change)
        self._ids.add(change.id)
        self._arrival[change.id] = len(self._arrival)

    def unknown_at(self, invitation: Change, *, ours: bool) -> list[Change]:
        """The changes a copy of the log taken with `invitation` cannot hold, in order:
        every change at the invitation's lamport or later (no change its author had seen is
        there), and, for an invitation we made (`ours`: the copy we sent was this log then),
        every change that came into this log after it: one made concurrently by a member
        whose log was behind ours sorts before it."""
        arrived = self._arrival.get(invitation.id, len(self._arrival))
        return [
            c
            for c in self._changes
            if c.id != invitation.id
            and (c.lamport >= invitation.lamport or (ours and self._arrival[c.id] > arrived))
        ]

    def heads(self) -> list[str]:
        """The ids a change we make now names as its parents: the changes that apply and that
        no other change that applies follows, the latest first (at most MAX_PARENTS). Not
        ignored ones: other members may have refused them, and ours would wait for them."""
        applied = [c for c in self._changes if self.verdicts.get(c.id, "") is None]
        followed = {parent for c in applied for parent in c.parents}
        heads = [c for c in applied if c.id not in followed]
        heads.sort(key=lambda c: c.order, reverse=True)
        return [c.id for c in heads[:MAX_PARENTS]]

    # ---- the fold ----------------------------------------------------------------------------
    def _fold(self) -> GroupState:
        """The state, and every change's verdict. A removal voids the changes of the removed
        made without knowing of it (concurrent with it); which removals do is settled one at
        a time, the one by the most senior admin first (see `_next_removal`), until none
        voids anything more: the voided set only grows, so this ends, and it depends on the
        set of changes alone."""
        pasts, waiting = self._causal_pasts()
        voided: dict[str, str] = {}
        judged: dict[str, tuple[frozenset[str], tuple[int, str] | None]] = {}
        while True:
            removal = self._next_removal(pasts, {**waiting, **voided}, judged)
            if removal is None:
                break
            voided.update(_voided_by(removal, self._changes, pasts, voided))
        state, self.verdicts, _ = _fold_changes(self._changes, {**waiting, **voided})
        return state

    def _causal_pasts(self) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
        """Per change whose parents are all in the log, each placed and before it in the
        order: every change it follows. The others wait (ignored, with why) for what they
        name to arrive; one naming a change that does not come before it waits for good."""
        pasts: dict[str, frozenset[str]] = {}
        waiting: dict[str, str] = {}
        lamports = {c.id: c.lamport for c in self._changes}
        for change in self._changes:  # in order: a placed change's parents come before it
            if any(parent not in pasts for parent in change.parents):
                missing = any(parent not in lamports for parent in change.parents)
                waiting[change.id] = (
                    "a change that follows changes not known yet"
                    if missing
                    else "a change that follows a change that is not before it"
                )
                continue
            if any(lamports[parent] >= change.lamport for parent in change.parents):
                waiting[change.id] = "a change that follows a change that is not before it"
                continue
            past: set[str] = set(change.parents)
            for parent in change.parents:
                past |= pasts[parent]
            pasts[change.id] = frozenset(past)
        return pasts, waiting

    def _next_removal(
        self,
        pasts: dict[str, frozenset[str]],
        ignored: dict[str, str],
        judged: dict[str, tuple[frozenset[str], tuple[int, str] | None]],
    ) -> Change | None:
        """The removal (or `left`) to settle next: among those that would void something
        not voided yet and that are valid in their own causal past (what their author knew:
        nothing the removed made concurrently can make them invalid), a `left` first, then
        the one whose author has been an admin the longest (the creator first), then the
        first in the order. So a removed admin cannot escape by a backdated removal of their
        remover, or of one granted by a backdated grant: unless they are the more senior
        admin, theirs is voided first."""
        best: tuple[tuple[int, str], tuple[int, str]] | None = None
        chosen: Change | None = None
        for removal in self._changes:
            if removal.kind not in DEPARTURES or removal.id in ignored:
                continue
            if not _voided_by(removal, self._changes, pasts, ignored):
                continue
            seniority = self._seniority_in_past(removal, pasts[removal.id], ignored, judged)
            if seniority is None:
                continue
            rank = (seniority, removal.order)
            if best is None or rank < best:
                best, chosen = rank, removal
        return chosen

    def _seniority_in_past(
        self,
        removal: Change,
        past: frozenset[str],
        ignored: dict[str, str],
        judged: dict[str, tuple[frozenset[str], tuple[int, str] | None]],
    ) -> tuple[int, str] | None:
        """None if the removal breaks a rule in its causal past; else the place where its
        author became an admin there. Kept per removal until a change of its past is voided
        (a fold per removal per round would be slow on a full log)."""
        voided_in_past = frozenset(past.intersection(ignored))
        cached = judged.get(removal.id)
        if cached is not None and cached[0] == voided_in_past:
            return cached[1]
        changes = [self._changes[0], *(c for c in self._changes[1:] if c.id in past)]
        state, _, admin_since = _fold_changes(changes, ignored)
        try:
            apply(state, removal)
        except ChangeError:
            seniority = None
        else:  # leaving voids only its author's own changes: settled first
            left = removal.kind is ChangeKind.LEFT
            seniority = LEAVING_FIRST if left else admin_since[removal.author]
        judged[removal.id] = (voided_in_past, seniority)
        return seniority


def _fold_changes(
    changes: list[Change], ignored: dict[str, str]
) -> tuple[GroupState, dict[str, str | None], dict[str, tuple[int, str]]]:
    """The changes (the root first, then in order) applied one by one, but for `ignored`
    (id: why); with each verdict, and per admin the place of the change that made them
    one (their seniority)."""
    root = changes[0]
    assert root.link is not None
    creator = Member(
        root.author, MemberState.JOINED, root.link, root.link_text, admin=True, since=root.at
    )
    state = GroupState(root.group_id, root.name, root.author, {root.author: creator})
    verdicts: dict[str, str | None] = {root.id: None}
    admin_since = {root.author: root.order}
    for change in changes[1:]:
        if change.id in ignored:
            verdicts[change.id] = ignored[change.id]
            continue
        try:
            state = apply(state, change)
        except ChangeError as exc:
            verdicts[change.id] = str(exc)
            continue
        verdicts[change.id] = None
        if change.kind is ChangeKind.ADMIN_GRANTED:
            admin_since[change.subject] = change.order
    return state, verdicts, admin_since


def _voided_by(
    removal: Change,
    changes: list[Change],
    pasts: dict[str, frozenset[str]],
    voided: dict[str, str],
) -> dict[str, str]:
    """The changes not yet voided that a removal (or a `left`) voids: those by the removed
    (the one who left) that neither it follows nor follow it. Made without knowing of it, at
    a lower lamport they could come before it and use powers their author no longer has (a
    removed admin removing, inviting, granting admin rights)."""
    removed = removal.subject
    before = pasts[removal.id]
    why = "of their removal" if removal.kind is ChangeKind.REMOVED else "that they had left"
    return {
        change.id: f"a '{change.kind.value}' change its author made without knowing {why}"
        for change in changes
        if change.author == removed
        and change.id != removal.id
        and change.id in pasts
        and change.id not in voided
        and change.id not in before
        and removal.id not in pasts[change.id]
    }


def apply(state: GroupState, change: Change) -> GroupState:
    """The state after one change, or ChangeError saying which rule it breaks."""
    kind = change.kind
    author = state.member(change.author)
    if kind is ChangeKind.CREATED:
        raise ChangeError("a second 'created' change")
    if kind in (ChangeKind.JOINED, ChangeKind.DECLINED):
        return _answer(state, change, author)
    if author is None or author.state is not MemberState.JOINED:
        raise ChangeError(f"a '{kind.value}' change by someone who is not a member")
    if kind is ChangeKind.LEFT:
        return _with(state, replace(author, state=MemberState.LEFT, admin=False, since=change.at))
    if not author.admin:
        raise ChangeError(f"a '{kind.value}' change by a member who is not an admin")
    if kind is ChangeKind.RENAMED:
        return replace(state, name=change.name)
    subject = state.member(change.subject)
    if kind is ChangeKind.INVITED:
        return _invite(state, change, subject)
    if kind is ChangeKind.REMOVED:
        if subject is None or subject.state not in (MemberState.JOINED, MemberState.INVITED):
            raise ChangeError("a removal of someone who is neither a member nor invited")
        if subject.chat_key == change.author:
            raise ChangeError("a removal of its own author (that is leaving)")
        if subject.chat_key == state.creator:
            raise ChangeError("a removal of the group's creator")
        return _with(
            state, replace(subject, state=MemberState.REMOVED, admin=False, since=change.at)
        )
    # ADMIN_GRANTED
    if subject is None or subject.state is not MemberState.JOINED:
        raise ChangeError("admin rights for someone who is not a member")
    if subject.admin:
        raise ChangeError("admin rights for someone who has them")
    return _with(state, replace(subject, admin=True))


def _invite(state: GroupState, change: Change, subject: Member | None) -> GroupState:
    if subject is not None:
        if subject.state is MemberState.JOINED:
            raise ChangeError("an invitation of someone who is a member")
        open_invite = subject.state is MemberState.INVITED and (
            subject.expires_at is None or change.at <= subject.expires_at
        )
        if open_invite:
            raise ChangeError("an invitation of someone whose invitation is open")
    renewed = subject is not None and subject.state is MemberState.INVITED
    if not renewed and state.present() >= MAX_MEMBERS:
        raise ChangeError(f"an invitation beyond {MAX_MEMBERS} members")
    if change.expires_at is None or change.expires_at <= change.at:
        raise ChangeError("an invitation that expires before it is made")
    _identity_key_free(state, change)
    member = Member(
        change.subject,
        MemberState.INVITED,
        change.link,
        change.link_text,
        invite_id=change.id,
        invited_by=change.author,
        expires_at=change.expires_at,
        since=change.at,
    )
    return _with(state, member)


def _answer(state: GroupState, change: Change, author: Member | None) -> GroupState:
    kind = change.kind
    if author is None or author.state is not MemberState.INVITED:
        raise ChangeError(f"a '{kind.value}' change by someone who is not invited")
    if change.invite_id != author.invite_id:
        raise ChangeError(f"a '{kind.value}' change answering another invitation")
    if author.expires_at is not None and change.at > author.expires_at:
        raise ChangeError(f"a '{kind.value}' change after the invitation expired")
    if kind is ChangeKind.DECLINED:
        return _with(state, replace(author, state=MemberState.DECLINED, since=change.at))
    _identity_key_free(state, change)
    return _with(
        state,
        replace(
            author,
            state=MemberState.JOINED,
            link=change.link,
            link_text=change.link_text,
            since=change.at,
        ),
    )


def _identity_key_free(state: GroupState, change: Change) -> None:
    """ChangeError if the link of an invitation or a join names the Olm identity key of
    someone else who is a member or invited."""
    link = change.link
    if link is None:
        return
    for member in state.members.values():
        if (
            member.chat_key != change.subject
            and member.state in (MemberState.JOINED, MemberState.INVITED)
            and member.link is not None
            and member.link.identity_key == link.identity_key
        ):
            raise ChangeError(f"a '{change.kind.value}' change whose link names another's key")


def _with(state: GroupState, member: Member) -> GroupState:
    members = dict(state.members)
    members[member.chat_key] = member
    return replace(state, members=members)
