"""SVG snapshots of the community screens (pytest-textual-snapshot), fed hand-made views with
fixed keys and times (UTC); the flows behind them run against real messengers in
test_communities.py. The test under each picture checks the words it must show, so a
snapshot updated by mistake still fails.
Update after an intended change: pytest tests/ui/test_community_snapshots.py --snapshot-update"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness.tui import NOW, settle
from harness.tui import ViewHost as Harness
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input

from chat.events import (
    ChatView,
    CommunityChannelView,
    CommunityMemberView,
    CommunityRequestView,
    CommunityView,
    MessageView,
)
from ui.screens.communities import CommunitiesScreen
from ui.screens.community_dialogs import NewCommunityScreen
from ui.screens.community_edit import EditCommunityScreen
from ui.screens.community_members import CommunityMembersScreen
from ui.screens.main import MainScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.conversation import ConversationView

SIZE = (130, 32)
ALICE = "cw1alice000000000000000000000000000000000000000000000000000000"
BOB = "cw1bob00000000000000000000000000000000000000000000000000000000"
CAROL = "cw1carol000000000000000000000000000000000000000000000000000000"
DAVE = "cw1dave00000000000000000000000000000000000000000000000000000000"
GENERAL = "6" * 64
SIGHTINGS = "5" * 64

BIRDERS = CommunityView(
    id="c" * 64,
    name="Birders",
    about="We watch birds, mostly on Sundays.",
    join_policy="approval",
    shard="/waku/2/rs/16/7",
    protection_key="02" + "a1" * 32,
    channels=[
        CommunityChannelView(GENERAL, "general"),
        CommunityChannelView(SIGHTINGS, "sightings"),
    ],
    members=[
        CommunityMemberView(ALICE, "Alice", "owner"),
        CommunityMemberView(BOB, "Bob", "admin"),
        CommunityMemberView(CAROL, "Carol", "member"),
    ],
    my_role="owner",
    owner_last_seen=NOW - 5,
    version=4,
    epoch=1,
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def said(n: int, sender: str, text: str, at: float, **extra: Any) -> MessageView:
    outgoing = sender == ALICE
    state = extra.pop("state", "stored" if outgoing else "received")
    return MessageView(
        id=f"m{n:03d}", chat_id=GENERAL, sender=sender, text=text, outgoing=outgoing,
        timestamp=NOW - at, state=state, **extra,
    )  # fmt: skip


MESSAGES = [
    said(1, BOB, "a heron at the pond", 2_000),
    said(2, ALICE, "I saw it too", 1_900, recipients=2, delivered_to=[BOB, CAROL]),
    said(3, CAROL, "photos please", 1_500),
    said(4, ALICE, "tomorrow at 7", 600, recipients=2, delivered_to=[BOB]),
    said(5, ALICE, "bring tea", 100, state="sent"),
]


def feed_channel(screen: MainScreen) -> None:
    chat_list = screen.query_one(ChatList)
    chat_list.set_chats(
        [
            ChatView(GENERAL, "channel", "Birders #general", 0, NOW - 100),
            ChatView(SIGHTINGS, "channel", "Birders #sightings", 2, NOW - 3_000),
            ChatView("b" * 32, "direct", "Bob", 0, NOW - 4_000, BOB),
        ]
    )
    chat_list.set_join_requests(1)
    chat_list.set_current(GENERAL)
    screen.current_chat = GENERAL
    screen.own_name = "Alice"
    screen.communities = {BIRDERS.id: BIRDERS}
    screen._show_title(chat_list.chats[GENERAL])
    screen.query_one(ConversationView).show_chat(
        GENERAL, MESSAGES, unread=0, has_older=False, channel=True
    )
    screen.refresh_bindings()


def test_a_community_channel(snap_compare: Any) -> None:
    """ "seen by n" beside our messages (never ✓✓), members' names, the channel's mark, the
    title's shard and protection, the join-request badge."""

    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        text = pilot.app.screen.query_one(ConversationView).visible_text()
        assert "✓ seen by 2  Alice: I saw it too" in text
        assert "✓ seen by 1  Alice: tomorrow at 7" in text
        assert "↑            Alice: bring tea" in text
        assert "Carol: photos please" in text and "✓✓" not in text
        title = str(pilot.app.screen.query_one("#chat-title").render())
        assert title.startswith("◆ Birders #general  ·  3 members  ·  shard 7 · protected")
        assert (
            "✉ 1 join request"
            in pilot.app.screen.query_one(ChatList).get_option_at_index(0).prompt.plain
        )  # type: ignore[union-attr]

    assert snap_compare(Harness(MainScreen, feed_channel), terminal_size=SIZE, run_before=check)


def test_the_communities_screen_with_the_request_queue(snap_compare: Any) -> None:
    requests = [
        CommunityRequestView(
            "r1", BIRDERS.id, DAVE, "Dave", "received", "pending", None, NOW - 5,
            NOW + 20 * 3600, message="I birdwatch too",
        ),
        CommunityRequestView(
            "r2", "e" * 64, ALICE, "Alice", "sent", "pending", None, NOW - 240,
            NOW + 23 * 3600, sends=2, next_send_at=NOW + 30,
        ),
    ]  # fmt: skip

    def feed(screen: CommunitiesScreen) -> None:
        screen.communities = {BIRDERS.id: BIRDERS}
        screen.fetched_names = {"e" * 64: "Book club"}
        screen.requests = {r.id: r for r in requests}
        screen.show_error("")
        screen.show()
        screen.query_one("#requests-table", DataTable).focus()

    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        table = screen.query_one("#requests-table", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0][:3] == ["Birders", "Dave", "asks to join"]
        assert rows[0][3:] == ["I birdwatch too", "pending; expires in 20 h"]
        assert rows[1][:3] == ["Book club", "you", "asked by you"]
        assert rows[1][4] == (
            "pending; owner last seen 4 min ago; sent 2×, next in 30 s; expires in 23 h"
        )
        # The cursor is on Dave's request to us: accept and decline, not cancel.
        hint = str(screen.query_one("#communities-hint").render())
        assert "a accept · d decline" in hint and "cancel" not in hint

    app = Harness(CommunitiesScreen, feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


def test_the_member_panel_of_a_community(snap_compare: Any) -> None:
    async def check(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        table = screen.query_one(DataTable)
        rows = [tuple(str(c) for c in table.get_row_at(i))[:2] for i in range(table.row_count)]
        assert rows == [("owner", "Alice (you)"), ("admin", "Bob"), ("member", "Carol")]
        shard = str(screen.query_one("#community-shard").render())
        assert shard.startswith("shard 7 · protected (key 02a1a1a1a1a1…)")
        assert "owner last seen 5 s ago" in shard
        # On ourselves nothing is offered; on Bob (an admin) the owner may kick, ban and
        # revoke admin, and is not offered "make admin".
        assert str(screen.query_one("#community-members-hint").render()) == "Esc closes"
        await pilot.press("down")
        await settle(pilot)
        hint = str(screen.query_one("#community-members-hint").render())
        assert hint == "k kick · b ban · r revoke admin · Esc closes"

    app = Harness(lambda: CommunityMembersScreen(BIRDERS, ALICE), lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


async def steady(pilot: Pilot[Any]) -> None:
    """Text fields' cursors drawn steadily: a blink would make the picture depend on when
    it is taken."""
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_the_create_dialog_with_the_shared_shard_option(snap_compare: Any) -> None:
    async def check(pilot: Pilot[Any]) -> None:
        await steady(pilot)
        screen = pilot.app.screen
        assert not screen.query_one("#community-shared", Checkbox).value  # protected by default
        cost = str(screen.query_one("#community-shared-cost").render())
        assert "No protection key" in cost and "bandwidth shared" in cost

    app = Harness(NewCommunityScreen, lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)


def test_the_edit_dialog_of_a_community(snap_compare: Any) -> None:
    async def check(pilot: Pilot[Any]) -> None:
        await steady(pilot)
        screen = pilot.app.screen
        assert screen.query_one("#edit-community-name", Input).value == "Birders"
        assert screen.query_one("#edit-community-about", Input).value == BIRDERS.about

    app = Harness(lambda: EditCommunityScreen(BIRDERS), lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=check)
