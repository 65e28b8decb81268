"""SVG snapshots of the private-group screens (pytest-textual-snapshot), fed hand-made views
with fixed keys and times (UTC), as in test_snapshots.py; the flows behind them run against
real messengers in test_groups.py. The test under each picture checks the words it must
show, so a snapshot updated by mistake still fails.
Update after an intended change: pytest tests/ui/test_group_snapshots.py --snapshot-update"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness.tui import NOW, settle
from harness.tui import ViewHost as Harness
from textual.pilot import Pilot
from textual.widgets import DataTable, SelectionList

from chat.events import (
    ChatView,
    ContactView,
    GroupMemberView,
    GroupView,
    InviteView,
    MessageView,
    TraceStep,
)
from ui.screens.contacts import ContactsScreen
from ui.screens.main import MainScreen
from ui.screens.members import MembersScreen
from ui.screens.new_group import NewGroupScreen
from ui.screens.trace import TraceScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.conversation import ConversationView

SIZE = (110, 32)
ALICE = "cw1alice000000000000000000000000000000000000000000000000000000"
BOB = "cw1bob00000000000000000000000000000000000000000000000000000000"
CAROL = "cw1carol000000000000000000000000000000000000000000000000000000"
DAVE = "cw1dave00000000000000000000000000000000000000000000000000000000"
ERIN = "cw1erin00000000000000000000000000000000000000000000000000000000"
GROUP = "9" * 64
BOB_CHAT = "b" * 32


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def said(n: int, sender: str, text: str, at: float, **extra: Any) -> MessageView:
    outgoing = sender == ALICE
    state = extra.pop("state", "delivered" if outgoing else "received")
    return MessageView(
        id=f"g{n:03d}", chat_id=GROUP, sender=sender, text=text, outgoing=outgoing,
        timestamp=NOW - at, state=state, **extra,
    )  # fmt: skip


GROUP_VIEW = GroupView(
    id=GROUP,
    name="Weekend trip",
    admins=[ALICE, BOB],
    members=[
        GroupMemberView(ALICE, "Alice", "joined", admin=True),
        GroupMemberView(BOB, "Bob", "joined", admin=True),
        GroupMemberView(CAROL, "Carol", "joined"),
        GroupMemberView(DAVE, "Dave", "left"),
        GroupMemberView(ERIN, "Erin", "invited"),
    ],
    creator=ALICE,
    my_state="joined",
)
MESSAGES = [
    said(1, ALICE, "Alice invited Bob", 3_000, kind="system"),
    said(2, BOB, "Bob joined", 2_900, kind="system"),
    said(3, CAROL, "Carol joined", 2_800, kind="system"),
    said(4, DAVE, "Dave joined", 2_700, kind="system"),
    said(5, BOB, "who is driving on Saturday?", 2_000),
    said(6, ALICE, "I can drive", 1_900, recipients=3, delivered_to=[BOB, CAROL, DAVE]),
    said(7, CAROL, "great, I'll bring the map", 1_500),
    said(8, DAVE, "Dave left", 1_000, kind="system"),
    said(9, ALICE, "leaving at 9", 600, recipients=2, delivered_to=[BOB], state="stored"),
    said(10, ALICE, "Alice renamed the group to “Weekend trip”", 300, kind="system"),
    said(11, ALICE, "see you all", 100, recipients=3, delivered_to=[BOB, CAROL]),
]


def feed_group(screen: MainScreen) -> None:
    chat_list = screen.query_one(ChatList)
    chat_list.set_chats(
        [
            ChatView(GROUP, "group", "Weekend trip", 0, NOW - 100),
            ChatView(BOB_CHAT, "direct", "Bob", 1, NOW - 4_000, BOB),
        ]
    )
    chat_list.set_invitations(1)
    chat_list.set_current(GROUP)
    screen.current_chat = GROUP
    screen.own_name = "Alice"
    screen.groups = {GROUP: GROUP_VIEW}
    screen._show_title(chat_list.chats[GROUP])
    screen.query_one(ConversationView).show_chat(
        GROUP, MESSAGES, unread=0, has_older=False, group=True
    )
    screen.refresh_bindings()


def test_a_group_chat(snap_compare: Any) -> None:
    """The counts beside our messages, members' names, system lines, the group's mark."""

    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        text = pilot.app.screen.query_one(ConversationView).visible_text()
        assert "✓✓ 3/3   Alice: I can drive" in text
        assert "✓  1/2   Alice: leaving at 9" in text
        assert "✓✓ 2/3   Alice: see you all" in text
        assert "Carol: great, I'll bring the map" in text
        assert "· Dave left" in text and "Dave: Dave left" not in text

    app = Harness(MainScreen, feed_group)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


def test_the_new_group_dialog(snap_compare: Any) -> None:
    contacts = [
        ContactView(BOB, "Bob", "mutual", BOB_CHAT, "", True, NOW - 3_600),
        ContactView(CAROL, "Carol", "mutual", "c" * 32, "", False, NOW - 3_000),
        ContactView(DAVE, "Dave", "request_sent", None, "", False, NOW - 50),
    ]

    def feed(screen: NewGroupScreen) -> None:
        screen.show_contacts(contacts)
        screen.query_one("#group-name").value = "Weekend trip"  # type: ignore[attr-defined]
        screen.query_one(SelectionList).select(BOB)

    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, NewGroupScreen)
        assert [c.display_name for c in dialog.contacts] == ["Bob", "Carol"]  # Dave: no
        assert dialog.picked == [BOB]

    assert snap_compare(Harness(NewGroupScreen, feed), terminal_size=SIZE, run_before=check)


def test_the_member_panel_of_an_admin(snap_compare: Any) -> None:
    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        panel = pilot.app.screen
        assert isinstance(panel, MembersScreen)
        hint = str(panel.query_one("#members-hint").render())
        # The cursor is on Alice herself: she cannot remove or promote herself.
        assert hint == "a add a contact · n rename · l leave · Esc closes"

    app = Harness(lambda: MembersScreen(GROUP_VIEW, ALICE), lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


def test_the_trace_of_a_group_message(snap_compare: Any) -> None:
    message = MESSAGES[10]
    steps = [
        TraceStep(NOW - 100, None, "queued", {}),
        TraceStep(NOW - 99.8, "queued", "sent", {"peers_reached": 2}),
        TraceStep(NOW - 99, "sent", "stored", {"store_peer": "16Uiu2HAm…x7Q"}),
        TraceStep(NOW - 98, "stored", "stored", {"acknowledged": "1/3", "missing": [CAROL, DAVE]}),
        TraceStep(
            NOW - 60,
            "stored",
            "delivered",
            {"acknowledged": "2/3", "not_waited_for": [DAVE], "delivered": "2/3"},
        ),
    ]
    names = {ALICE: "Alice", BOB: "Bob", CAROL: "Carol", DAVE: "Dave"}

    def feed(screen: TraceScreen) -> None:
        screen.show_steps(steps)

    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        table = pilot.app.screen.query_one("#trace-members", DataTable)
        rows = [tuple(str(c) for c in table.get_row_at(i))[:2] for i in range(table.row_count)]
        assert rows == [
            ("Bob", "✓✓ acknowledged"),
            ("Carol", "✓✓ acknowledged"),
            ("Dave", "left: not waited for"),
        ]

    app = Harness(lambda: TraceScreen(message, group=GROUP_VIEW, names=names), feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


def test_invitations_beside_the_contact_requests(snap_compare: Any) -> None:
    contacts = [
        ContactView(CAROL, "Carol", "request_received", None, "hi from the trip", False, NOW),
        ContactView(BOB, "Bob", "mutual", BOB_CHAT, "", True, NOW - 3_600),
        ContactView(DAVE, "Dave", "mutual", "d" * 32, "", False, NOW - 3_600),
    ]
    invites = [
        InviteView(
            "i1", "8" * 64, "Book club", BOB, ALICE, "received", "invited", NOW + 6 * 86_400,
            created_at=NOW - 30,
        ),
        InviteView(
            "i2", GROUP, "Weekend trip", ALICE, DAVE, "sent", "invited", NOW + 6 * 86_400,
            created_at=NOW - 60, next_send_at=NOW + 40, sends=2,
        ),
        InviteView(
            "i3", "7" * 64, "Old band", ALICE, BOB, "sent", "declined", NOW + 86_400,
            created_at=NOW - 9_000,
        ),
    ]  # fmt: skip

    def feed(screen: ContactsScreen) -> None:
        screen.show_contacts(contacts)
        screen.show_invites(invites)

    app = Harness(ContactsScreen, feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
