"""The group tables of migration 6: membership logs, Megolm session rows, invitations, the
recipients of each outgoing message with their acknowledgements, and system lines."""

from __future__ import annotations

from collections.abc import Callable

from storage.repositories.conversations import Conversation
from storage.store import Store

MakeConversation = Callable[..., Conversation]


def test_a_log_keeps_each_change_once_in_its_order(store: Store) -> None:
    store.groups.add_changes("g1", [("b", 2, b"second"), ("a", 0, b"root")], now=1)
    store.groups.add_changes("g1", [("b", 2, b"ignored copy"), ("c", 1, b"first")], now=2)
    store.groups.add_changes("g2", [("x", 0, b"other root")], now=3)
    assert store.groups.changes("g1") == [b"root", b"first", b"second"]
    assert store.groups.all_changes() == {  # in the order they came, for the log to reload
        "g1": [b"root", b"second", b"first"],
        "g2": [b"other root"],
    }


def test_session_rows_are_written_replaced_and_deleted(store: Store) -> None:
    store.groups.save_sessions("g1", {"s1": ("alice", {"n": 1}), "s2": ("bob", {"n": 2})}, now=1)
    store.groups.save_sessions("g1", {"s1": ("alice", {"n": 3})}, ["s2"], now=2)
    rows = store.groups.sessions()
    assert [(r.group_id, r.session_id, r.owner, r.state) for r in rows] == [
        ("g1", "s1", "alice", {"n": 3})
    ]


def test_invitations_are_kept_with_their_flow(store: Store) -> None:
    store.group_invites.save(
        "i1", group_id="g1", direction="sent", peer="bob", state="invited", flow={"a": 1}, now=1
    )
    store.group_invites.save(
        "i1", group_id="g1", direction="sent", peer="bob", state="joined", flow={"a": 2}, now=2
    )
    (invite,) = store.group_invites.all()
    assert (invite.id, invite.state, invite.flow, invite.updated_at) == (
        "i1",
        "joined",
        {"a": 2},
        2,
    )


def test_recipients_and_acknowledgements_of_a_message(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation("c1"))
    rowid = store.messages.add(
        conversation_id="c1", message_id="m1", sender="me", outgoing=True, body="hi",
        sent_at=1, state="queued", now=1,
    )  # fmt: skip
    store.recipients.add(rowid, ["carol", "bob"])
    assert store.recipients.acknowledge(rowid, "bob", at=5)
    assert not store.recipients.acknowledge(rowid, "bob", at=6)  # the first one counts
    assert not store.recipients.acknowledge(rowid, "mallory", at=6)
    found = store.recipients.of([rowid, 999])
    assert [(r.member, r.acknowledged_at) for r in found[rowid]] == [("bob", 5), ("carol", None)]
    store.conversations.remove("c1")
    assert store.recipients.of([rowid]) == {}


def test_system_lines_are_messages_of_their_own_kind(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation("c1"))
    text = store.messages.add(
        conversation_id="c1", message_id="m1", sender="bob", outgoing=False, body="hi",
        sent_at=1, state="received", now=1,
    )  # fmt: skip
    line = store.messages.add(
        conversation_id="c1", message_id="m2", sender="bob", outgoing=False,
        body="Bob renamed the group", sent_at=2, state="received", now=2, kind="system",
    )  # fmt: skip
    kinds = {m.id: m.kind for m in store.messages.page("c1")}
    assert kinds == {text: "text", line: "system"}
