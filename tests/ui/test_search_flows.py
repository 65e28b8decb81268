"""Pilot tests of message search (issue 15 item 11): Ctrl+F (and the palette) opens the
search screen; results show their chat and the words around the match, in every chat or
the open one; Enter opens the conversation at the message, selected and on screen, even
far back in a long chat; End then goes to the newest. The profile is seeded with history
(a real SQLCipher file); the TUI runs its real messenger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harness.tui import on, running
from textual.widgets import Input

from chat.config import Config
from chat.session import Session
from storage.profiles import Profiles
from storage.repositories.conversations import Conversation
from ui.app import ChinwagApp
from ui.screens.help import KEYS
from ui.screens.search import SearchScreen
from ui.widgets.conversation import ConversationView

SIZE = (110, 34)
BOB_CHAT, CAROL_CHAT = "b" * 64, "c" * 64
LONG_CHAT = 300
TARGET = 40
"""Far behind the newest page (60) of Bob's chat."""


def seed(config: Config, passphrase: str) -> None:
    with Profiles(config.profiles_dir).unlock(config.profile, passphrase) as store:
        for chat_id, title, active in ((BOB_CHAT, "Bob", 9_000_000), (CAROL_CHAT, "Carol", 1)):
            store.conversations.add(
                Conversation(
                    id=chat_id, kind="direct", title=title, pubsub_topic="/waku/2/rs/42/0",
                    content_topic=f"/chinwag/1/{title}/proto", created_at=0,
                    last_activity_at=active,
                )
            )  # fmt: skip
        for n in range(LONG_CHAT):
            body = f"chat line {n} about the weather"
            if n == TARGET:
                body = "the zeppelin lands at noon, bring binoculars"
            store.messages.add(
                conversation_id=BOB_CHAT, message_id=f"bob-{n}", sender="bob", outgoing=False,
                body=body, sent_at=1_000_000 + n * 1000, state="received", now=1,
                received_at=1_000_000 + n * 1000,
            )  # fmt: skip
        store.messages.add(
            conversation_id=CAROL_CHAT, message_id="carol-1", sender="carol", outgoing=False,
            body="I saw a zeppelin once", sent_at=500_000, state="received", now=1,
        )  # fmt: skip


def test_search_finds_messages_and_opens_the_chat_at_the_one_chosen(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    seed(config, ui.passphrase)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, f"chat line {LONG_CHAT - 1} about")  # Bob's, newest
            await ui.wait_for_text(pilot, "^f Search")  # the key, in the footer (drawn last)

            await pilot.press("ctrl+f")
            await ui.wait_until(pilot, on(app, SearchScreen))
            await pilot.press(*"zeppelin")
            await ui.wait_for_text(pilot, "2 message(s) in every chat")
            text = ui.screen_text(app)
            assert "Bob" in text and "Carol" in text and "bring binoculars" in text

            await pilot.press("ctrl+o")  # only the open chat (Bob's)
            await ui.wait_for_text(pilot, "1 message(s) in Bob")
            assert "I saw a zeppelin once" not in ui.screen_text(app)

            await pilot.press("enter", "enter")  # to the results, then open the first
            await ui.wait_until(pilot, running(app))
            conversation = app.screen.query_one(ConversationView)
            await ui.wait_until(pilot, lambda: conversation.selected is not None)
            assert conversation.selected is not None
            assert conversation.selected.id == f"bob-{TARGET}"
            await pilot.pause()
            # On screen (not just loaded), with what came before it.
            text = ui.screen_text(app)
            assert "the zeppelin lands at noon" in text
            assert f"chat line {TARGET - 1} about" in text
            assert f"chat line {LONG_CHAT - 1} about" not in text  # a stretch, not the end

            conversation.focus()
            await pilot.press("end")  # the newest, in place of the stretch
            await ui.wait_for_text(pilot, f"chat line {LONG_CHAT - 1} about")
            assert conversation.selected is None

            # From the palette too; a query that cannot be searched is a sentence there.
            await pilot.press("ctrl+p", *"Search messages", "enter")
            await ui.wait_until(pilot, on(app, SearchScreen))
            app.screen.query_one("#search-input", Input).value = "x" * 201
            await ui.wait_for_text(pilot, "A search has at most 200 characters")
            await pilot.press("escape")
            await ui.wait_until(pilot, running(app))

            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    assert "| Ctrl+F | main | search messages" in KEYS  # the help screen's table


def test_enter_enter_both_reaching_the_search_field_opens_the_first_result(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Enter, Enter typed quickly (tmux on a loaded machine): both reach the search field
    before the first has moved the focus to the results. The second must open the result,
    not search again and leave the screen up."""
    make_profile("Alice")
    seed(config, ui.passphrase)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE) as pilot:
            await ui.wait_until(pilot, running(app))
            await pilot.press("ctrl+f")
            await ui.wait_until(pilot, on(app, SearchScreen))
            await pilot.press(*"binoculars")
            await ui.wait_for_text(pilot, "1 message(s) in every chat")
            field = app.screen.query_one("#search-input", Input)
            field.post_message(Input.Submitted(field, field.value))
            field.post_message(Input.Submitted(field, field.value))
            await ui.wait_until(pilot, running(app))
            conversation = app.screen.query_one(ConversationView)
            await ui.wait_until(pilot, lambda: conversation.selected is not None)
            assert conversation.selected is not None
            assert conversation.selected.id == f"bob-{TARGET}"
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
