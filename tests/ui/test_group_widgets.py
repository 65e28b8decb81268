"""The group parts of the widgets and words, fed hand-made views: the count column of a
group chat (text cannot reach it), system lines (no sender, never unread, no reply), the
recipients of a message for the trace, the words for invitations and members, and the group
dialogs on a small window."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.tui import ViewHost
from harness.waiting import screen_text
from textual.app import App, ComposeResult

from chat.events import (
    ContactView,
    GroupMemberView,
    GroupView,
    InviteView,
    MessageView,
    TraceStep,
)
from ui.format import (
    ACKNOWLEDGED,
    MISSING,
    NOT_WAITED_FOR,
    group_delivery,
    group_status,
    group_title,
    in_how_long,
    invite_state,
    invite_who,
    recipient_states,
)
from ui.screens.members import MembersScreen
from ui.screens.new_group import NewGroupScreen
from ui.widgets.conversation import ConversationView

NOW = 1_800_000_000.0
GROUP = "9" * 64
ME, BOB, CAROL, DAVE = "cw1me", "cw1bob", "cw1carol", "cw1dave"


def said(n: int, sender: str, text: str, **extra: Any) -> MessageView:
    outgoing = sender == ME
    fields: dict[str, Any] = {"state": "delivered" if outgoing else "received"}
    fields.update(extra)
    return MessageView(
        id=f"m{n}", chat_id=GROUP, sender=sender, text=text, outgoing=outgoing,
        timestamp=NOW - 100 + n, **fields,
    )  # fmt: skip


def group(*members: tuple[str, str]) -> GroupView:
    return GroupView(
        GROUP,
        "Trip",
        [ME],
        [GroupMemberView(key, key[3:].title(), state) for key, state in members],
        ME,
        "joined",
    )


class Conversation(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def compose(self) -> ComposeResult:
        yield ConversationView(clock_fn=lambda: NOW)

    def on_conversation_view_action(self, event: ConversationView.Action) -> None:
        self.actions.append(f"{event.action} {event.message.id}")


def test_a_group_count_has_its_column_and_system_lines_have_no_sender() -> None:
    fake = "✓✓ 3/3 looks delivered " * 6
    messages = [
        said(1, BOB, "Bob joined", kind="system"),
        said(2, BOB, fake),
        said(3, ME, "hello", recipients=3, delivered_to=[BOB, CAROL, DAVE]),
        said(4, ME, "again", state="stored", recipients=3, delivered_to=[BOB]),
        said(5, ME, "wait", state="queued", recipients=3),
        said(6, CAROL, "Carol left", kind="system"),
    ]

    async def scenario() -> None:
        app = Conversation()
        async with app.run_test(size=(60, 30)) as pilot:
            view = app.query_one(ConversationView)
            view.show_chat(GROUP, messages, unread=1, has_older=False, group=True)
            await pilot.pause()
            lines = view.visible_text().splitlines()[1:]  # under the day separator
            columns = [line[6:15] for line in lines]
            assert "✓✓ 3/3   " in columns and "✓  1/3   " in columns and "◷        " in columns
            owners = [line[15:].split(":")[0] for line in lines if "3/3" in line[6:15]]
            assert owners == ["me"]  # only our message, none of the text
            assert any(line[15:] == "· Bob joined" for line in lines)
            # The read marker counts messages only: above Bob's message, not the system line
            # after it that no one wrote.
            text = view.visible_text()
            assert text.index(" new ") < text.index("cw1bob: ✓✓ 3/3 looks")
            view.cursor = 0
            view.action_reply()  # a system line cannot be replied to
            view.cursor = 1
            view.action_reply()
            await pilot.pause()
            assert app.actions == ["reply m2"]

    asyncio.run(scenario())


def test_the_recipients_of_a_group_message_for_its_trace() -> None:
    members = group((ME, "joined"), (BOB, "joined"), (CAROL, "joined"), (DAVE, "left"))
    message = said(1, ME, "hi", state="stored", recipients=3, delivered_to=[BOB])
    # Nobody named yet: the group's other members now.
    assert recipient_states(message, [], members) == [(BOB, ACKNOWLEDGED), (CAROL, MISSING)]
    step = TraceStep(NOW, "stored", "stored", {"acknowledged": "1/3", "missing": [CAROL, DAVE]})
    assert recipient_states(message, [step], members) == [
        (BOB, ACKNOWLEDGED),
        (CAROL, MISSING),
        (DAVE, NOT_WAITED_FOR),  # left since the step
    ]
    later = said(1, ME, "hi", recipients=3, delivered_to=[BOB, CAROL])
    done = TraceStep(NOW, "stored", "delivered", {"not_waited_for": [DAVE]})
    assert recipient_states(later, [step, done], None) == [
        (BOB, ACKNOWLEDGED),
        (CAROL, ACKNOWLEDGED),
        (DAVE, NOT_WAITED_FOR),
    ]
    assert group_delivery(later) == (
        "delivered: acknowledged by 2 of the 3 members it was sent to "
        "(the others left since: not waited for)"
    )
    assert group_status(later) == "✓✓ 2/3"
    assert group_status(said(2, ME, "x", state="queued", recipients=3)) == "◷"


def test_words_for_invitations_and_groups() -> None:
    received = InviteView("i", GROUP, "Trip", BOB, ME, "received", "invited", NOW + 3 * 86_400)
    assert invite_state(received, NOW) == "waiting for your answer; expires in 3 d"
    assert invite_who(received, {BOB: "Bob"}) == "Bob invited you"
    sent = InviteView("j", GROUP, "Trip", ME, CAROL, "sent", "failed", None, reason="no peers")
    assert invite_state(sent, NOW) == "failed: no peers"
    assert invite_who(sent, {}) == f"you invited {CAROL}"
    assert in_how_long(NOW + 3_600 * 5, NOW) == "in 5 h"
    trip = group((ME, "joined"), (BOB, "joined"), (CAROL, "invited"))
    assert group_title(trip) == "# Trip  ·  group of 2, 1 invited"


def test_the_group_dialogs_keep_their_buttons_and_hints_in_a_small_window() -> None:
    """80x24 with many contacts and members: the lists scroll, and what is under them (the
    buttons, the hint, the error line) stays in view."""
    people = [(f"cw1p{i:02d}" + "0" * 55, f"Person {i}") for i in range(25)]
    contacts = [ContactView(key, name, "mutual", "x" * 32, "", False, NOW) for key, name in people]
    members = [GroupMemberView(key, name, "joined") for key, name in people]
    big = GroupView(GROUP, "Big", [people[0][0]], members, people[0][0], "joined")

    async def scenario(screen: Any, feed: Any, expected: list[str]) -> None:
        app = ViewHost(screen, feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.pause()
            text = screen_text(app)
            for words in expected:
                assert words in text, (words, text)

    asyncio.run(
        scenario(
            NewGroupScreen,
            lambda screen: screen.show_contacts(contacts),
            ["Create", "Cancel", "Esc cancels", "Person 0"],
        )
    )
    asyncio.run(
        scenario(
            lambda: MembersScreen(big, people[0][0]),
            lambda _: None,
            ["a add a contact · n rename", "Person 0 (you)"],
        )
    )


def test_the_outbox_lists_an_invitation_and_its_system_line_with_the_same_id() -> None:
    """A group invitation has the id of its `invited` change, and so has the system line the
    change shows as: both are in the outbox until delivered, and listing them raised
    DataTable's DuplicateKey (the tmux-free group flow failed under load in CI)."""
    from chat.events import OutboxItemView
    from ui.screens.outbox import OutboxScreen

    same = "073bbbd4cc24769d86d78f3fd5e3fd01"
    items = [
        OutboxItemView(same, "message", GROUP, "Alice invited Carol", "sent", None, 1, 8,
                       NOW + 60, NOW),
        OutboxItemView(same, "group_invite", GROUP, "invitation to Friends for Carol",
                       "invited", None, 1, 12, NOW + 60, NOW),
    ]  # fmt: skip

    async def scenario() -> None:
        app = ViewHost(OutboxScreen, lambda screen: screen.show_items(items))
        async with app.run_test(size=(110, 24)) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert "Alice invited Carol" in text
            assert "invitation to Friends for Carol" in text
            assert "2 waiting" in text

    asyncio.run(scenario())
