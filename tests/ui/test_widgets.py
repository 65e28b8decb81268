"""Widgets fed with hand-made views: the conversation's lazy paging, read marker, state
column and countdowns, the composer's keys and history, the chat list's order and
next-unread jump, the sidebar on a small window, the verification emoji, the words."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

from harness.tui import ViewHost
from rich.cells import cell_len
from textual.app import App, ComposeResult

from chat.events import ChatView, ContactView, MessageView, OutboxItemView, VerificationView
from ui.format import (
    MIN_PASSPHRASE_SCORE,
    in_how_long,
    message_status,
    passphrase_strength,
    split_message,
)
from ui.screens.contacts import ContactsScreen
from ui.screens.main import MainScreen
from ui.screens.outbox import OutboxScreen
from ui.screens.verify import VerifyScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView

NOW = 1_800_000_000.0
CHAT = "a" * 32


def view(n: int, *, outgoing: bool = False, **extra: Any) -> MessageView:
    fields: dict[str, Any] = {
        "state": "delivered" if outgoing else "received",
        "timestamp": NOW - 10_000 + n,
        "text": f"message {n}",
    }
    fields.update(extra)
    return MessageView(
        id=f"m{n:05d}", chat_id=CHAT, sender="me" if outgoing else "them", outgoing=outgoing,
        **fields,
    )  # fmt: skip


class ConversationApp(App[None]):
    """Answers the view's page requests from an in-memory history, like MainScreen does
    from the messenger."""

    def __init__(self, history: list[MessageView]) -> None:
        super().__init__()
        self.history = history
        self.pages_asked = 0

    def compose(self) -> ComposeResult:
        yield ConversationView(clock_fn=lambda: NOW)

    def on_conversation_view_older_wanted(self, event: ConversationView.OlderWanted) -> None:
        self.pages_asked += 1
        end = next(i for i, m in enumerate(self.history) if m.id == event.before)
        page = self.history[max(0, end - 50) : end]
        self.query_one(ConversationView).prepend(event.chat_id, page, has_older=end > 50)


def test_conversation_loads_older_pages_at_the_top_and_keeps_the_reader_in_place() -> None:
    history = [view(n, outgoing=n % 3 == 0) for n in range(10_000)]

    async def scenario() -> None:
        app = ConversationApp(history)
        async with app.run_test(size=(80, 20)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_chat(CHAT, history[-50:], unread=0, has_older=True)
            await pilot.pause()
            assert len(conversation.messages) == 50
            assert "message 9999" in conversation.visible_text()
            assert conversation.scroll_y == conversation.max_scroll_y  # at the newest
            conversation.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            await pilot.pause()
            assert app.pages_asked == 1 and len(conversation.messages) == 100
            assert conversation.scroll_y > 0  # the page went above what the reader sees
            assert conversation.messages[0].id == "m09900"

    asyncio.run(scenario())


def test_the_newest_message_stays_in_view_when_the_conversation_gets_shorter() -> None:
    """A line appearing above the health bar (the no-peers hint) takes rows from the
    conversation after it opened at the bottom: the newest message must stay in view."""
    history = [view(n) for n in range(50)]

    async def scenario() -> None:
        app = ConversationApp(history)
        async with app.run_test(size=(80, 20)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_chat(CHAT, history, unread=0, has_older=False)
            await pilot.pause()
            assert "message 49" in conversation.visible_text()
            await pilot.resize_terminal(80, 17)  # same width, three rows fewer
            await pilot.pause()
            await pilot.pause()
            assert "message 49" in conversation.visible_text()
            assert conversation.scroll_y == conversation.max_scroll_y

    asyncio.run(scenario())


def test_read_marker_sits_above_the_first_unread_and_updates_rerender_one_message() -> None:
    messages = [view(1), view(2, outgoing=True, state="sent"), view(3), view(4)]

    async def scenario() -> None:
        app = ConversationApp(messages)
        async with app.run_test(size=(80, 20)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_chat(CHAT, messages, unread=2, has_older=False)
            await pilot.pause()
            lines = conversation.visible_text().splitlines()
            marker = next(i for i, line in enumerate(lines) if " new " in line)
            assert "message 3" in lines[marker + 1]
            assert "↑  me: message 2" in conversation.visible_text()
            conversation.update(
                view(2, outgoing=True, state="failed", state_reason="no peers", attempts=8)
            )
            text = conversation.visible_text()
            assert "✗  me: message 2\n         failed: no peers (ctrl+r retries)" in text
            conversation.add(view(5))
            assert conversation.visible_text().splitlines()[-1].endswith("message 5")

    asyncio.run(scenario())


class ComposerApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def compose(self) -> ComposeResult:
        yield Composer()

    def on_composer_submitted(self, event: Composer.Submitted) -> None:
        self.sent.append(event.text)


def test_composer_enter_sends_alt_enter_adds_a_line_and_up_recalls() -> None:
    async def scenario() -> None:
        app = ComposerApp()
        async with app.run_test() as pilot:
            composer = app.query_one(Composer)
            composer.focus()
            await pilot.press("h", "i", "alt+enter", "y", "o", "enter")
            assert app.sent == ["hi\nyo"] and composer.text == ""
            await pilot.press("enter")  # nothing to send
            await pilot.press("o", "k", "enter", "up")
            assert composer.text == "ok"
            await pilot.press("up")
            assert composer.text == "hi\nyo"
            await pilot.press("down", "down")
            assert composer.text == ""

    asyncio.run(scenario())


def test_chat_list_orders_by_activity_and_jumps_to_the_next_unread() -> None:
    chats = [
        ChatView("1" * 32, "direct", "Old", 0, NOW - 500),
        ChatView("2" * 32, "direct", "New", 0, NOW - 10),
        ChatView("3" * 32, "direct", "Middle", 4, NOW - 100),
    ]

    class ListApp(App[None]):
        def compose(self) -> ComposeResult:
            yield ChatList()

    async def scenario() -> None:
        app = ListApp()
        async with app.run_test():
            chat_list = app.query_one(ChatList)
            chat_list.set_chats(chats)
            assert [c.name for c in chat_list.ordered()] == ["New", "Middle", "Old"]
            chat_list.set_current("2" * 32)
            next_unread = chat_list.next_unread()
            assert next_unread is not None and next_unread.name == "Middle"
            chat_list.set_requests(2)
            assert chat_list.get_option_at_index(0).id == "__requests__"

    asyncio.run(scenario())


def test_words_for_states_schedules_and_passphrases() -> None:
    queued = view(1, outgoing=True, state="queued", state_reason="no peers", attempts=2,
                  max_attempts=8, next_attempt_at=NOW + 20)  # fmt: skip
    assert message_status(queued, NOW) == "◷ no peers; retrying in 20 s, attempt 2 of 8"
    assert message_status(view(2, outgoing=True, state="delivered"), NOW) == "✓✓"
    assert message_status(view(3), NOW) == ""
    assert in_how_long(NOW + 600, NOW) == "in 10 min" and in_how_long(None, NOW) == "not scheduled"
    assert passphrase_strength("abc")[0] == 1
    assert passphrase_strength("correct horse battery staple")[0] == 4


def test_the_health_bar_counts_down_to_the_next_dial_while_offline() -> None:
    from chat.events import HealthView
    from ui.format import health_summary

    def offline(**fields: Any) -> HealthView:
        base: dict[str, Any] = {
            "status": "offline", "online": False, "peers": 0, "peers_per_shard": {},
            "store_reachable": False, "services": {}, "last_catch_up": None, "outbox": 0,
            "known_peers": 1,
        }  # fmt: skip
        return HealthView(**{**base, **fields})

    assert health_summary(offline(next_dial_at=NOW + 4.2), NOW).startswith(
        "○ offline, reconnecting in 5 s (ctrl+r: now)  │  peers 0"
    )
    assert health_summary(offline(next_dial_at=NOW + 0.2), NOW).startswith(
        "○ offline, reconnecting…  │"
    )
    assert health_summary(offline(dialing=1), NOW).startswith("○ offline, reconnecting…  │")
    # Nobody to dial, or nothing known when: no promise on the bar.
    assert health_summary(offline(known_peers=0, next_dial_at=NOW + 3), NOW).startswith(
        "○ offline  │"
    )
    assert health_summary(offline(), NOW).startswith("○ offline  │")


def test_the_health_bar_shows_the_light_services_held_instead_of_relay_peers() -> None:
    from chat.events import HealthView
    from ui.format import health_summary

    def light(status: str, line: str) -> HealthView:
        return HealthView(
            status, status == "online", 2, {"/waku/2/rs/1/0": 2}, True, {}, None, 1,
            mode="light", light_line=line,
        )  # fmt: skip

    assert health_summary(light("online", "filter 2/2, push 2/2, store ok")) == (
        "● online  │  peers 2  │  filter 2/2, push 2/2, store ok  │  outbox 1"
    )
    degraded = health_summary(light("degraded", "filter 1/2, push 2/2, store ok"))
    assert degraded.startswith("◐ degraded  │") and "filter 1/2" in degraded


def test_a_state_has_its_own_column_that_message_text_cannot_reach() -> None:
    """Item 10: a message saying "✓✓" does not look delivered; the glyph sits between the
    time and the name, where text never is (it wraps under the indent)."""
    fake = "✓✓ delivered, honest " * 8
    messages = [
        view(1, text=fake),
        view(2, outgoing=True, state="delivered"),
        view(3, outgoing=True, state="sent", text=fake),
    ]

    async def scenario() -> None:
        app = ConversationApp(messages)
        async with app.run_test(size=(60, 30)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_chat(CHAT, messages, unread=0, has_older=False)
            await pilot.pause()
            lines = conversation.visible_text().splitlines()[1:]  # under the day separator
            columns = [line[6:9] for line in lines]
            assert "✓✓ " in columns and "↑  " in columns
            owners = [line[9:].split(":")[0] for line in lines if line[6:9] == "✓✓ "]
            assert owners == ["me"]  # only our delivered message, none of the text
            assert all(line[:9].strip() == "" for line in lines if "honest" in line[9:12])

    asyncio.run(scenario())


def test_retry_countdowns_count_every_second() -> None:
    """Item 10: "retrying in N s" moves each second, not each five."""
    now = [NOW]
    queued = view(1, outgoing=True, state="queued", state_reason="no peers", attempts=1,
                  max_attempts=8, next_attempt_at=NOW + 20)  # fmt: skip

    class CountdownApp(App[None]):
        def compose(self) -> ComposeResult:
            yield ConversationView(clock_fn=lambda: now[0])

    async def scenario() -> None:
        app = CountdownApp()
        async with app.run_test(size=(80, 10)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_chat(CHAT, [queued], unread=0, has_older=False)
            await pilot.pause()
            assert "retrying in 20 s" in conversation.visible_text()
            now[0] += 3
            await pilot.pause(1.5)
            assert "retrying in 17 s" in conversation.visible_text()

    asyncio.run(scenario())


def test_the_outbox_and_contacts_countdowns_count_every_second() -> None:
    now = [NOW]
    item = OutboxItemView("m1", "message", CHAT, "hi", "queued", "no peers", 1, 8, NOW + 20, NOW)
    dave = ContactView("cw1dave", "Dave", "request_sent", None, "", False, NOW,
                       next_send_at=NOW + 40, sends=2)  # fmt: skip

    async def shows(screen: Any, feed: Any, before: str, after: str) -> None:
        app = ViewHost(screen, feed)
        app.clock = lambda: now[0]
        async with app.run_test(size=(120, 20)) as pilot:
            await pilot.pause()
            rows = app.screen.query_one("DataTable")
            assert before in str(rows.get_row_at(0))
            now[0] += 3
            await pilot.pause(1.5)
            assert after in str(rows.get_row_at(0))
        now[0] = NOW

    async def scenario() -> None:
        await shows(OutboxScreen, lambda s: s.show_items([item]), "in 20 s", "in 17 s")
        await shows(ContactsScreen, lambda s: s.show_contacts([dave]), "in 40 s", "in 37 s")

    asyncio.run(scenario())


def test_on_a_small_window_the_sidebar_narrows() -> None:
    """Item 10: at 60x15 the chat list takes about a quarter of the width, not half."""
    chats = [ChatView("1" * 32, "direct", "Bob", 2, NOW - 60)]

    def feed(screen: MainScreen) -> None:
        screen.query_one(ChatList).set_chats(chats)

    async def width_at(size: tuple[int, int]) -> int:
        app = ViewHost(MainScreen, feed)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            return app.screen.query_one("#sidebar").outer_size.width

    async def scenario() -> None:
        assert await width_at((110, 32)) == 30
        assert await width_at((60, 15)) == 16

    asyncio.run(scenario())


def terminal_cells(text: str) -> int:
    """Columns a terminal gives `text` the way tmux 3.3 and wcwidth count: wide and fullwidth
    characters 2, variation selectors, joiners and combining marks 0, the rest 1. (Measured:
    tmux puts the cursor one column after "☁\ufe0f", where Rich counts two.)"""
    total = 0
    for char in text:
        if unicodedata.combining(char) or char in "\ufe0e\ufe0f\u200d":
            continue
        total += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return total


def test_the_verification_emoji_are_as_wide_on_screen_as_in_the_layout() -> None:
    """Item 10: the seven emoji with a variation selector (the worst case) no longer move
    the box's border: every line of the screen is as wide for the terminal as for Rich."""
    emoji = [("☁️", "Cloud"), ("❤️", "Heart"), ("☂️", "Umbrella"), ("✏️", "Pencil"),
             ("✂️", "Scissors"), ("☎️", "Telephone"), ("✈️", "Aeroplane")]  # fmt: skip
    bob = ContactView("cw1bob", "Bob", "mutual", "b" * 32, "", False, NOW)

    def feed(screen: VerifyScreen) -> None:
        screen.show(VerificationView("cw1bob", "compare", emoji))

    async def scenario() -> None:
        app = ViewHost(lambda: VerifyScreen(bob), feed)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            strips = app.screen._compositor.render_strips()
            lines = ["".join(segment.text for segment in strip) for strip in strips]
            assert any("Scissors" in line for line in lines)
            for line in lines:
                assert terminal_cells(line) == cell_len(line), repr(line)

    asyncio.run(scenario())


def test_long_text_is_cut_into_parts_at_breaks_and_weak_passphrases_are_named() -> None:
    assert split_message("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert split_message("one\ntwo three", 9) == ["one", "two three"]
    assert split_message("x" * 10, 4) == ["xxxx", "xxxx", "xx"]
    assert split_message("short", 10) == ["short"]
    for weak in ("abc", "password", "abcdefghij", "aaaaaaaaaaaaaaaaaaaa"):
        assert passphrase_strength(weak)[0] < MIN_PASSPHRASE_SCORE, weak
    for fine in ("correcthorse", "purple giraffes", "Tr0ub4dor&3x"):
        assert passphrase_strength(fine)[0] >= MIN_PASSPHRASE_SCORE, fine
