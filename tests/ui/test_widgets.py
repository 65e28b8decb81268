"""Widgets fed with hand-made views: the conversation's lazy paging and read marker, the
composer's keys and history, the chat list's order and next-unread jump, the words."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult

from chat.events import ChatView, MessageView
from ui.format import in_how_long, message_status, passphrase_strength
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView

NOW = 1_800_000_000.0
CHAT = "a" * 32


def view(n: int, *, outgoing: bool = False, **extra: Any) -> MessageView:
    fields: dict[str, Any] = {
        "state": "delivered" if outgoing else "received",
        "timestamp": NOW - 10_000 + n,
    }
    fields.update(extra)
    return MessageView(
        id=f"m{n:05d}", chat_id=CHAT, sender="me" if outgoing else "them",
        text=f"message {n}", outgoing=outgoing, **fields,
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
            assert "message 2  ↑" in conversation.visible_text()
            conversation.update(
                view(2, outgoing=True, state="failed", state_reason="no peers", attempts=8)
            )
            assert "✗ failed: no peers (ctrl+r retries)" in conversation.visible_text()
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
