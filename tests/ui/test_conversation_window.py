"""The conversation opened at a message found by search (issue 15 item 11), fed with
hand-made views: a stretch around the message, selected and on screen; newer pages load as
the reader scrolls down; a message arriving meanwhile waits for the newest page; End asks
for the newest page."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult

from chat.events import MessageView
from ui.widgets.conversation import ConversationView

NOW = 1_800_000_000.0
CHAT = "a" * 32


def view(n: int) -> MessageView:
    return MessageView(
        id=f"m{n:05d}", chat_id=CHAT, sender="them", text=f"message {n}", outgoing=False,
        timestamp=NOW - 10_000 + n, state="received",
    )  # fmt: skip


class WindowApp(App[None]):
    """Answers the view's page requests from an in-memory history, like MainScreen does."""

    def __init__(self, history: list[MessageView]) -> None:
        super().__init__()
        self.history = history
        self.asked: list[str] = []

    def compose(self) -> ComposeResult:
        yield ConversationView(clock_fn=lambda: NOW)

    def on_conversation_view_newer_wanted(self, event: ConversationView.NewerWanted) -> None:
        self.asked.append("newer")
        start = next(i for i, m in enumerate(self.history) if m.id == event.after) + 1
        page = self.history[start : start + 50]
        more = start + 50 < len(self.history)
        self.query_one(ConversationView).append_page(event.chat_id, page, has_newer=more)

    def on_conversation_view_newest_wanted(self, event: ConversationView.NewestWanted) -> None:
        self.asked.append("newest")
        self.query_one(ConversationView).show_chat(
            event.chat_id, self.history[-50:], unread=0, has_older=True
        )


def test_a_stretch_around_a_found_message_then_newer_pages_then_the_newest() -> None:
    history = [view(n) for n in range(1_000)]

    async def scenario() -> Any:
        app = WindowApp(history)
        async with app.run_test(size=(80, 20)) as pilot:
            conversation = app.query_one(ConversationView)
            conversation.show_window(
                CHAT, history[480:551], focus="m00500", has_older=True, has_newer=True
            )
            await pilot.pause()
            await pilot.pause()
            assert conversation.selected is not None and conversation.selected.id == "m00500"
            top, bottom = conversation.scroll_y, conversation.scroll_y + conversation.size.height
            line = next(i for i, s in enumerate(conversation._lines) if "message 500" in s.text)
            assert top <= line < bottom  # on screen
            assert "newer messages load as you scroll" in conversation.visible_text()

            conversation.add(view(1_000))  # arrives while reading the past: not appended
            assert conversation.messages[-1].id == "m00550" and app.asked == []

            conversation.scroll_end(animate=False, immediate=True)
            await pilot.pause()
            await pilot.pause()
            assert app.asked == ["newer"] and conversation.messages[-1].id == "m00600"
            assert conversation.selected is not None and conversation.selected.id == "m00500"

            conversation.action_newest()
            await pilot.pause()
            assert app.asked == ["newer", "newest"]
            assert conversation.messages[-1].id == "m00999" and conversation.selected is None
            assert "newer messages load" not in conversation.visible_text()

            # Sending while reading a found stretch goes to the newest, to show what was sent.
            conversation.show_window(
                CHAT, history[480:551], focus="m00500", has_older=True, has_newer=True
            )
            await pilot.pause()
            app.asked.clear()
            sent = MessageView(
                id="mine", chat_id=CHAT, sender="me", text="just typed", outgoing=True,
                timestamp=NOW, state="queued",
            )  # fmt: skip
            conversation.add(sent)
            await pilot.pause()
            assert app.asked == ["newest"]

    asyncio.run(scenario())
