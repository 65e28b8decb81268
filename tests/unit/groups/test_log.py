"""The membership log: signed changes, the rules at each change's place, and convergence:
every member holding the same changes reads the same member list, admins and name, in
whatever order the changes arrived."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.groups import changes as ch
from chat.groups.changes import ChangeError, ChangeKind
from chat.groups.log import (
    MAX_IGNORED_PER_AUTHOR,
    MAX_LOG_ENTRIES,
    LogError,
    MembershipLog,
    MemberState,
)
from chat.identity import Identity
from chat.proto import group_pb2
from tests.harness.forged_links import link_claiming

ALICE, BOB, CAROL, DAVE, ERIN = (
    Identity.create(n, 0) for n in ("Alice", "Bob", "Carol", "Dave", "Erin")
)
PEOPLE = (ALICE, BOB, CAROL, DAVE, ERIN)
LATER = 10_000.0


def new_group(name: str = "Friends") -> tuple[ch.Change, MembershipLog]:
    root = ch.created(ALICE, name, 100.0)
    return root, MembershipLog(root)


def invite_and_join(log: MembershipLog, who: Identity, by: Identity = ALICE) -> None:
    invite = ch.invited(
        by, log.group_id, log.next_lamport(), who.contact_link(), LATER, 101.0, parents=log.heads()
    )
    assert log.add(invite).ignored is None
    joined = ch.joined(who, log.group_id, log.next_lamport(), invite.id, 102.0, parents=log.heads())
    assert log.add(joined).ignored is None


def test_the_creator_is_the_first_member_and_admin_and_the_id_is_the_roots_hash() -> None:
    root, log = new_group()
    assert root.group_id == ch.group_id_of(root.signed) and len(root.group_id) == 32
    assert log.state.name == "Friends" and log.state.creator == ALICE.chat_key_text
    assert log.state.joined() == {ALICE.chat_key_text}
    assert log.state.admins() == [ALICE.chat_key_text]


def test_invite_join_rename_grant_leave_remove() -> None:
    _, log = new_group()
    invite_and_join(log, BOB)
    invite_and_join(log, CAROL)
    assert log.state.joined() == {p.chat_key_text for p in (ALICE, BOB, CAROL)}
    gid = log.group_id
    assert log.add(ch.renamed(ALICE, gid, log.next_lamport(), "Best friends", 103)).ignored is None
    assert log.state.name == "Best friends"
    grant = ch.admin_granted(ALICE, gid, log.next_lamport(), BOB.chat_key, 104)
    assert log.add(grant).ignored is None
    assert log.state.is_admin(BOB.chat_key_text)
    assert log.add(ch.removed(BOB, gid, log.next_lamport(), CAROL.chat_key, 105)).ignored is None
    assert log.state.members[CAROL.chat_key_text].state is MemberState.REMOVED
    assert log.add(ch.left(BOB, gid, log.next_lamport(), 106)).ignored is None
    bob = log.state.members[BOB.chat_key_text]
    assert bob.state is MemberState.LEFT and not bob.admin
    assert log.state.joined() == {ALICE.chat_key_text}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda g, n: ch.renamed(BOB, g, n, "mine now", 103), "not an admin"),
        (lambda g, n: ch.removed(BOB, g, n, ALICE.chat_key, 103), "not an admin"),
        (lambda g, n: ch.invited(CAROL, g, n, DAVE.contact_link(), LATER, 103), "not a member"),
        (lambda g, n: ch.removed(ALICE, g, n, ALICE.chat_key, 103), "its own author"),
        (lambda g, n: ch.admin_granted(ALICE, g, n, CAROL.chat_key, 103), "not a member"),
        (lambda g, n: ch.joined(CAROL, g, n, "0" * 32, 103), "not invited"),
        (lambda g, n: ch.invited(ALICE, g, n, BOB.contact_link(), LATER, 103), "is a member"),
        (lambda g, n: ch.invited(ALICE, g, n, CAROL.contact_link(), 50, 103), "expires before"),
    ],
)
def test_changes_that_break_a_rule_are_kept_but_ignored(make, reason) -> None:  # type: ignore[no-untyped-def]
    _, log = new_group()
    invite_and_join(log, BOB)
    before = log.state
    added = log.add(make(log.group_id, log.next_lamport()))
    assert added.new and added.ignored is not None and reason in added.ignored
    assert log.state == before
    assert added.change.id in log


def test_the_creator_cannot_be_removed_even_by_another_admin() -> None:
    _, log = new_group()
    invite_and_join(log, BOB)
    log.add(ch.admin_granted(ALICE, log.group_id, log.next_lamport(), BOB.chat_key, 103))
    added = log.add(ch.removed(BOB, log.group_id, log.next_lamport(), ALICE.chat_key, 104))
    assert added.ignored == "a removal of the group's creator"


def test_a_join_after_the_invitation_expired_or_for_another_invitation_is_ignored() -> None:
    _, log = new_group()
    invite = ch.invited(ALICE, log.group_id, 1, BOB.contact_link(), 200.0, 101.0)
    log.add(invite)
    late = ch.joined(BOB, log.group_id, 2, invite.id, 201.0)
    assert "expired" in (log.add(late).ignored or "")
    assert log.state.members[BOB.chat_key_text].state_at(199.0) == "invited"
    assert log.state.members[BOB.chat_key_text].state_at(201.0) == "expired"
    renewed = ch.invited(ALICE, log.group_id, 3, BOB.contact_link(), LATER, 300.0)
    assert log.add(renewed).ignored is None  # an expired invitation may be renewed
    old_answer = ch.joined(BOB, log.group_id, 4, invite.id, 301.0)
    assert "another invitation" in (log.add(old_answer).ignored or "")
    assert log.add(ch.joined(BOB, log.group_id, 5, renewed.id, 302.0)).ignored is None


def test_forged_and_foreign_changes_do_not_decode() -> None:
    root, log = new_group()
    change = ch.renamed(ALICE, log.group_id, 1, "x", 101)
    signed = group_pb2.SignedChange.FromString(change.signed)
    body = group_pb2.ChangeBody.FromString(signed.body)
    body.renamed.name = "forged"
    forged = group_pb2.SignedChange(body=body.SerializeToString(), signature=signed.signature)
    with pytest.raises(ChangeError, match="bad signature"):
        ch.decode_change(forged.SerializeToString(), log.group_id)
    with pytest.raises(ChangeError, match="another group"):
        ch.decode_change(change.signed, "f" * 32)
    _, other = new_group("Other")
    with pytest.raises(LogError):
        log.add(ch.renamed(ALICE, other.group_id, 1, "y", 101))
    with pytest.raises(ChangeError):
        ch.decode_change(b"\xff" * 40)
    with pytest.raises(ChangeError, match="bytes"):
        ch.decode_change(b"\x00" * (ch.MAX_CHANGE_BYTES + 1))
    assert ch.decode_change(root.signed).kind is ChangeKind.CREATED


def test_names_are_cleaned_and_bounded() -> None:
    with pytest.raises(ChangeError):
        ch.created(ALICE, "\x1b \u200b\t", 1.0)
    with pytest.raises(ChangeError):
        ch.created(ALICE, "x" * (ch.MAX_GROUP_NAME + 1), 1.0)
    assert ch.created(ALICE, " a\x1b  b ", 1.0).name == "a b"


def test_a_change_held_twice_is_one_change() -> None:
    _, log = new_group()
    rename = ch.renamed(ALICE, log.group_id, 1, "again", 101)
    assert log.add(rename).new
    assert not log.add(ch.decode_change(rename.signed)).new
    assert len(log) == 2


def test_the_log_is_bounded() -> None:
    _, log = new_group()
    for n in range(1, MAX_LOG_ENTRIES):
        log.add(ch.renamed(ALICE, log.group_id, n, f"name {n}", 100 + n))
    assert len(log) == MAX_LOG_ENTRIES
    with pytest.raises(LogError, match="full"):
        log.add(ch.renamed(ALICE, log.group_id, MAX_LOG_ENTRIES, "one more", 1.0))


def test_crossed_removals_by_two_admins_end_the_same_on_every_member() -> None:
    """Alice removes her admin Bob while Bob removes Carol: both made at the same log
    position, neither knowing of the other. Bob's is void (he made it without knowing of his
    removal), whichever comes first by id; every member agrees."""
    _, log = new_group()
    for who in (BOB, CAROL):
        invite_and_join(log, who)
    grant = ch.admin_granted(
        ALICE, log.group_id, log.next_lamport(), BOB.chat_key, 103, parents=log.heads()
    )
    log.add(grant)
    n, heads = log.next_lamport(), log.heads()
    by_alice = ch.removed(ALICE, log.group_id, n, BOB.chat_key, 104, parents=heads)
    by_bob = ch.removed(BOB, log.group_id, n, CAROL.chat_key, 104, parents=heads)
    base = log.changes()
    one = MembershipLog.from_changes([*base, by_alice, by_bob])
    other = MembershipLog.from_changes([*base, by_bob, by_alice])
    assert one.state == other.state and one.verdicts == other.verdicts
    assert one.verdicts[by_alice.id] is None
    assert "without knowing of their removal" in (one.verdicts[by_bob.id] or "")
    assert one.state.members[BOB.chat_key_text].state is MemberState.REMOVED
    assert one.state.is_member(CAROL.chat_key_text)


# ---- convergence, for any script and any delivery order ----------------------------------
OPS = ("invite", "join", "decline", "leave", "remove", "rename", "grant")


@st.composite
def scripts(draw: st.DrawFn) -> list[ch.Change]:
    """A random set of signed changes to one group by random authors, at random log
    positions: many break a rule somewhere, which is the point."""
    root = ch.created(ALICE, "Start", 100.0)
    made = [root]
    invites: dict[str, str] = {}
    if draw(st.booleans()):  # from a group of four with two more admins: removals bite
        log = MembershipLog(root)
        for who in (BOB, CAROL, DAVE):
            invite_and_join(log, who)
        for who in (BOB, CAROL):
            log.add(
                ch.admin_granted(
                    ALICE, root.group_id, log.next_lamport(), who.chat_key, 103, parents=log.heads()
                )
            )
        made = log.changes()
    for step in range(draw(st.integers(1, 14))):
        op = draw(st.sampled_from(OPS))
        author = draw(st.sampled_from(PEOPLE))
        subject = draw(st.sampled_from(PEOPLE))
        at = 100.0 + draw(st.integers(0, 50))
        gid = root.group_id
        # What it follows: any earlier changes, now and then one no member has; its lamport
        # mostly above theirs (backdated as far as it may go, or later), now and then not.
        parents = draw(st.lists(st.sampled_from([*made, None]), max_size=3, unique=True))
        highest = max((c.lamport for c in parents if c is not None), default=0)
        lamport = max(1, highest + draw(st.integers(-1, 3)))
        parents = [c.id if c is not None else "f" * 32 for c in parents]
        if op == "invite" and subject is not author:
            change = ch.invited(
                author, gid, lamport, subject.contact_link(), 140.0, at, parents=parents
            )
            invites[subject.chat_key_text] = change.id
        elif op in ("join", "decline"):
            invite_id = invites.get(author.chat_key_text, "0" * 32)
            make = ch.joined if op == "join" else ch.declined
            change = make(author, gid, lamport, invite_id, at, parents=parents)
        elif op == "leave":
            change = ch.left(author, gid, lamport, at, parents=parents)
        elif op == "remove":
            change = ch.removed(author, gid, lamport, subject.chat_key, at, parents=parents)
        elif op == "grant":
            change = ch.admin_granted(author, gid, lamport, subject.chat_key, at, parents=parents)
        else:
            change = ch.renamed(author, gid, lamport, f"name {step}", at, parents=parents)
        made.append(change)
    return made


@settings(max_examples=60, deadline=None)
@given(data=st.data(), changes=scripts())
def test_every_member_converges_whatever_the_arrival_order(
    data: st.DataObject, changes: list[ch.Change]
) -> None:
    reference = MembershipLog.from_changes(changes)
    for _ in range(3):
        order = data.draw(st.permutations(changes[1:]))
        replica = MembershipLog(changes[0])
        for change in order:
            replica.add(ch.decode_change(change.signed, replica.group_id))
            assert replica.add(change).new is False  # a copy changes nothing
        assert replica.state == reference.state
        assert replica.verdicts == reference.verdicts
        assert [c.id for c in replica.changes()] == [c.id for c in reference.changes()]


@settings(max_examples=40, deadline=None)
@given(changes=scripts())
def test_the_state_always_obeys_the_rules(changes: list[ch.Change]) -> None:
    state = MembershipLog.from_changes(changes).state
    assert state.is_admin(state.creator) or state.members[state.creator].state is MemberState.LEFT
    for member in state.members.values():
        if member.admin:
            assert member.state is MemberState.JOINED
    assert state.name


def test_what_a_copy_taken_with_an_invitation_cannot_hold() -> None:
    """Bob (an admin) invites Erin while Alice, whose log is behind, removes Carol: the
    removal sorts before the invitation, yet Bob's copy for Erin could not hold it."""
    _, alice_log = new_group()
    invite_and_join(alice_log, BOB)
    invite_and_join(alice_log, CAROL)
    gid = alice_log.group_id
    grant = ch.admin_granted(ALICE, gid, alice_log.next_lamport(), BOB.chat_key, 103)
    alice_log.add(grant)
    bob_log = MembershipLog.from_changes(alice_log.changes())
    invite_and_join(bob_log, DAVE, by=BOB)  # Bob's log moves on: Alice's stays behind
    removal = ch.removed(ALICE, gid, alice_log.next_lamport(), CAROL.chat_key, 104)
    crossed = ch.renamed(ALICE, gid, bob_log.next_lamport(), "Alice's", 104)
    erin = ch.invited(BOB, gid, bob_log.next_lamport(), ERIN.contact_link(), LATER, 105)
    bob_log.add(erin)
    bob_log.add(removal)  # came to Bob after he invited Erin
    bob_log.add(crossed)
    assert removal.lamport < erin.lamport == crossed.lamport
    # Anyone: what is at the invitation's lamport or later (the crossed rename).
    assert [c.id for c in bob_log.unknown_at(erin, ours=False)] == [crossed.id]
    # Bob, who made it: also what came to him after it (the removal).
    assert {c.id for c in bob_log.unknown_at(erin, ours=True)} == {removal.id, crossed.id}
    # A log rebuilt from the changes in the order they came knows the same.
    again = MembershipLog.from_changes(bob_log_in_arrival_order(bob_log))
    assert {c.id for c in again.unknown_at(erin, ours=True)} == {removal.id, crossed.id}


def bob_log_in_arrival_order(log: MembershipLog) -> list[ch.Change]:
    order = log._arrival
    return sorted(log.changes(), key=lambda c: order[c.id])


def test_a_join_whose_link_names_another_members_olm_key_is_ignored() -> None:
    """Shares and frames are attributed by the sender's Olm identity key: a member whose link
    claimed another's key would take that member's messages as theirs (and have them
    refused as sent under the wrong name)."""
    _, log = new_group()
    gid = log.group_id
    invite_bob = ch.invited(ALICE, gid, log.next_lamport(), BOB.contact_link(), LATER, 101.0)
    assert log.add(invite_bob).ignored is None
    invite_and_join(log, CAROL)
    forged = link_claiming(BOB, CAROL.identity_key)
    bob_joins = ch.joined(BOB, gid, log.next_lamport(), invite_bob.id, 103.0)
    body = group_pb2.ChangeBody.FromString(group_pb2.SignedChange.FromString(bob_joins.signed).body)
    body.joined.link = forged
    bad_join = ch.sign_change(BOB, body)
    added = log.add(bad_join)
    assert added.ignored is not None and "another's key" in added.ignored
    assert log.state.members[BOB.chat_key_text].state is MemberState.INVITED
    # Nor may an admin invite someone under a member's key.
    forged_invite = ch.invited(
        ALICE, gid, log.next_lamport(), link_claiming(DAVE, CAROL.identity_key), LATER, 104.0
    )
    assert log.add(forged_invite).ignored is not None
    assert log.state.member(DAVE.chat_key_text) is None
    # Bob's honest join still works.
    assert log.add(ch.joined(BOB, gid, log.next_lamport(), invite_bob.id, 105.0)).ignored is None


def test_changes_from_the_network_that_do_nothing_are_kept_only_within_a_budget() -> None:
    _, log = new_group()
    gid = log.group_id
    invite_and_join(log, BOB)
    lamport = log.next_lamport()
    stranger = ch.renamed(ERIN, gid, lamport, "Erin's", 103.0)
    with pytest.raises(LogError, match="not kept"):
        log.add(stranger, untrusted=True)
    assert stranger.id not in log and len(log) == 3
    assert log.add(stranger).ignored is not None  # an admin's invitation log is taken whole
    kept = [
        log.add(ch.renamed(BOB, gid, lamport + n, f"Bob's {n}", 104.0), untrusted=True)
        for n in range(MAX_IGNORED_PER_AUTHOR)
    ]
    assert all(a.new and a.ignored for a in kept)
    with pytest.raises(LogError, match="not kept"):
        log.add(ch.renamed(BOB, gid, lamport + 99, "one more", 105.0), untrusted=True)
    assert log.add(ch.left(BOB, gid, log.next_lamport(), 106.0), untrusted=True).ignored is None
    assert log.state.joined() == {ALICE.chat_key_text}


# ---- causal parents: a removed admin cannot act by backdating ---------------------------
def test_a_change_waits_for_the_changes_it_follows_and_names_only_earlier_ones() -> None:
    _, log = new_group()
    invite_and_join(log, BOB)
    gid = log.group_id
    first = ch.renamed(ALICE, gid, log.next_lamport(), "One", 103.0, parents=log.heads())
    second = ch.renamed(ALICE, gid, first.lamport + 1, "Two", 104.0, parents=[first.id])
    added = log.add(second)
    assert added.ignored is not None and "not known yet" in added.ignored
    assert log.state.name == "Friends"
    assert log.add(first).ignored is None
    assert log.verdicts[second.id] is None and log.state.name == "Two"
    assert log.heads() == [second.id]
    backwards = ch.renamed(ALICE, gid, first.lamport, "Back", 105.0, parents=[first.id])
    added = log.add(backwards)
    assert added.ignored is not None and "not before it" in added.ignored
    with pytest.raises(ChangeError, match="more than"):
        ch.renamed(ALICE, gid, 99, "Many", 106.0, parents=[f"{n:032x}" for n in range(5)])


def backdated_takeover() -> tuple[MembershipLog, ch.Change, list[ch.Change]]:
    """Alice made Bob an admin, then removed him. Bob, from his log as it was before his
    removal, signs changes at lamports below it: he removes Carol, invites Erin (his second
    identity), Erin joins, he makes her an admin; Erin, seeing the removal, removes Dave."""
    _, log = new_group()
    for who in (BOB, CAROL, DAVE):
        invite_and_join(log, who)
    gid = log.group_id
    grant = ch.admin_granted(ALICE, gid, log.next_lamport(), BOB.chat_key, 103, parents=log.heads())
    assert log.add(grant).ignored is None
    bob_heads, bob_lamport = log.heads(), log.next_lamport()
    for n in range(4):  # Alice's log moves on before she removes Bob
        rename = ch.renamed(ALICE, gid, log.next_lamport(), f"n{n}", 104, parents=log.heads())
        assert log.add(rename).ignored is None
    removal = ch.removed(ALICE, gid, log.next_lamport(), BOB.chat_key, 105, parents=log.heads())
    assert removal.lamport > bob_lamport + 3
    drop_carol = ch.removed(BOB, gid, bob_lamport, CAROL.chat_key, 106, parents=bob_heads)
    erin_invite = ch.invited(
        BOB, gid, bob_lamport + 1, ERIN.contact_link(), LATER, 106, parents=[drop_carol.id]
    )
    erin_joins = ch.joined(
        ERIN, gid, bob_lamport + 2, erin_invite.id, 107, parents=[erin_invite.id]
    )
    erin_admin = ch.admin_granted(
        BOB, gid, bob_lamport + 3, ERIN.chat_key, 107, parents=[erin_joins.id]
    )
    drop_dave = ch.removed(
        ERIN,
        gid,
        removal.lamport + 1,
        DAVE.chat_key,
        108,
        parents=[removal.id, erin_admin.id],
    )
    return log, removal, [drop_carol, erin_invite, erin_joins, erin_admin, drop_dave]


def test_a_removed_admins_backdated_changes_are_void_in_every_arrival_order() -> None:
    log, removal, attack = backdated_takeover()
    base = log.changes()
    results = set()
    for order in itertools.permutations([removal, *attack]):
        replica = MembershipLog.from_changes(base)
        for change in order:
            replica.add(change)
        state = replica.state
        assert state.members[BOB.chat_key_text].state is MemberState.REMOVED
        assert state.is_member(CAROL.chat_key_text) and state.is_member(DAVE.chat_key_text)
        assert not state.is_member(ERIN.chat_key_text) and not state.is_admin(ERIN.chat_key_text)
        drop_carol, erin_invite, _, erin_admin, _ = attack
        for bobs in (drop_carol, erin_invite, erin_admin):
            verdict = replica.verdicts[bobs.id]
            assert verdict is not None and "without knowing of their removal" in verdict
        assert all(replica.verdicts[c.id] is not None for c in attack)
        results.add((tuple(sorted(replica.verdicts.items())), repr(state)))
    assert len(results) == 1


def test_changes_made_after_seeing_a_removal_are_judged_as_usual() -> None:
    """Bob, removed, is invited again and joins, knowing of his removal: he is a member."""
    log, removal, _ = backdated_takeover()
    assert log.add(removal).ignored is None
    gid = log.group_id
    again = ch.invited(
        ALICE, gid, log.next_lamport(), BOB.contact_link(), LATER, 110, parents=log.heads()
    )
    assert log.add(again).ignored is None
    rejoined = ch.joined(BOB, gid, log.next_lamport(), again.id, 111, parents=log.heads())
    assert log.add(rejoined).ignored is None
    assert log.state.is_member(BOB.chat_key_text)


def two_admins(first: Identity, second: Identity) -> MembershipLog:
    """Alice's group of Bob, Carol and Dave; `first` made an admin, then `second`."""
    _, log = new_group()
    for who in (BOB, CAROL, DAVE):
        invite_and_join(log, who)
    for who in (first, second):
        grant = ch.admin_granted(
            ALICE, log.group_id, log.next_lamport(), who.chat_key, 103, parents=log.heads()
        )
        assert log.add(grant).ignored is None
    return log


def counter_removal(log: MembershipLog, remover: Identity, removed: Identity) -> list[ch.Change]:
    """`remover` removes `removed`, after renaming the group twice; `removed`, from their log
    as it was before (at lower lamports), removes `remover`, and grants Dave admin rights,
    and Dave (knowing of the first removal) removes `remover` too."""
    gid = log.group_id
    old_heads, old_lamport = log.heads(), log.next_lamport()
    for name in ("One", "Two"):
        rename = ch.renamed(remover, gid, log.next_lamport(), name, 104, parents=log.heads())
        assert log.add(rename).ignored is None
    removal = ch.removed(
        remover, gid, log.next_lamport(), removed.chat_key, 105, parents=log.heads()
    )
    counter = ch.removed(removed, gid, old_lamport, remover.chat_key, 106, parents=old_heads)
    dave_admin = ch.admin_granted(
        removed, gid, old_lamport + 1, DAVE.chat_key, 106, parents=[counter.id]
    )
    by_dave = ch.removed(
        DAVE,
        gid,
        removal.lamport + 1,
        remover.chat_key,
        107,
        parents=[removal.id, dave_admin.id],
    )
    assert counter.order < dave_admin.order < removal.order < by_dave.order
    return [removal, counter, dave_admin, by_dave]


def test_a_removed_admin_cannot_escape_by_removing_their_remover_in_any_arrival_order() -> None:
    """Bob, the senior admin, removes Carol; her backdated removal of Bob, her grant to Dave
    and Dave's removal of Bob are all void."""
    log = two_admins(BOB, CAROL)
    contested = counter_removal(log, BOB, CAROL)
    base = log.changes()
    results = set()
    for order in itertools.permutations(contested):
        replica = MembershipLog.from_changes(base)
        for change in order:
            replica.add(change)
        state = replica.state
        assert state.members[CAROL.chat_key_text].state is MemberState.REMOVED
        assert state.is_member(BOB.chat_key_text) and state.is_admin(BOB.chat_key_text)
        assert state.is_member(DAVE.chat_key_text) and not state.is_admin(DAVE.chat_key_text)
        removal, counter, dave_admin, by_dave = contested
        assert replica.verdicts[removal.id] is None
        for voided in (counter, dave_admin):
            assert "without knowing of their removal" in (replica.verdicts[voided.id] or "")
        assert replica.verdicts[by_dave.id] is not None
        results.add((tuple(sorted(replica.verdicts.items())), repr(state)))
    assert len(results) == 1


def test_of_two_admins_removing_each_other_the_senior_one_stays() -> None:
    """Carol was an admin before Bob: Bob's removal of her is void when she removes him at
    the same time (Bob's, made without knowing of his removal)."""
    log = two_admins(CAROL, BOB)
    removal, counter, _, _ = counter_removal(log, BOB, CAROL)
    for order in ((removal, counter), (counter, removal)):
        replica = MembershipLog.from_changes([*log.changes(), *order])
        assert replica.state.members[BOB.chat_key_text].state is MemberState.REMOVED
        assert replica.state.is_admin(CAROL.chat_key_text)
        assert "without knowing of their removal" in (replica.verdicts[removal.id] or "")


def test_an_admin_who_left_cannot_act_by_backdating() -> None:
    """Bob, an admin, leaves; afterwards he signs, from his log as it was before he left, a
    removal of Carol and an invitation of Erin. Both are void in either arrival order;
    invited again, he joins (knowing he had left) and is a member."""
    log = two_admins(BOB, CAROL)
    gid = log.group_id
    old_heads, old_lamport = log.heads(), log.next_lamport()
    for name in ("One", "Two"):
        rename = ch.renamed(ALICE, gid, log.next_lamport(), name, 104, parents=log.heads())
        assert log.add(rename).ignored is None
    leaving = ch.left(BOB, gid, log.next_lamport(), 105, parents=log.heads())
    drop_carol = ch.removed(BOB, gid, old_lamport, CAROL.chat_key, 106, parents=old_heads)
    erin = ch.invited(
        BOB, gid, old_lamport + 1, ERIN.contact_link(), LATER, 106, parents=[drop_carol.id]
    )
    assert drop_carol.order < erin.order < leaving.order
    for order in itertools.permutations([leaving, drop_carol, erin]):
        replica = MembershipLog.from_changes([*log.changes(), *order])
        assert replica.state.members[BOB.chat_key_text].state is MemberState.LEFT
        assert replica.state.is_member(CAROL.chat_key_text)
        assert replica.state.member(ERIN.chat_key_text) is None
        for void in (drop_carol, erin):
            assert "without knowing that they had left" in (replica.verdicts[void.id] or "")
    again = ch.invited(
        ALICE, gid, replica.next_lamport(), BOB.contact_link(), LATER, 110, parents=replica.heads()
    )
    assert replica.add(again).ignored is None
    back = ch.joined(BOB, gid, replica.next_lamport(), again.id, 111, parents=replica.heads())
    assert replica.add(back).ignored is None and replica.state.is_member(BOB.chat_key_text)
