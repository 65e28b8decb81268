"""Pilot tests of every TUI flow against real messengers on loopback nodes (no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harness.tui import HeldBack, befriend_headless, on, running
from harness.waiting import wait_until
from textual.widgets import DataTable, Input

from chat.config import Config
from chat.messenger import MAX_INTRO_LENGTH
from chat.reliability.outbox import RetryPolicy
from chat.request_budget import StrangerPolicy
from chat.session import Session
from storage.profiles import Profiles
from storage.repositories.conversations import Conversation
from ui.app import ChinwagApp
from ui.format import emoji_grid
from ui.screens.contacts import ContactsScreen
from ui.screens.display_name import DisplayNameScreen
from ui.screens.help import HelpScreen
from ui.screens.main import MainScreen
from ui.screens.onboarding import OnboardingScreen
from ui.screens.outbox import OutboxScreen
from ui.screens.trace import TraceScreen
from ui.screens.unlock import UnlockScreen
from ui.screens.verify import VerifyScreen
from ui.screens.verify_request import VerificationRequestScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView

SIZE = (110, 34)


class CountingBells(ChinwagApp):
    """The real app; only the terminal bell is counted instead of rung."""

    bells = 0

    def bell(self) -> None:
        self.bells += 1


def shows_emoji(screen: str, emoji: list[tuple[str, str]]) -> bool:
    """The seven emoji over their names, as the verify screen lays them out."""
    return all(line in screen for line in emoji_grid(emoji, 78).splitlines())


def conversation(app: ChinwagApp) -> ConversationView:
    return app.screen.query_one(ConversationView)


def test_onboarding_checks_the_passphrase_then_creates_the_profile_and_shows_the_link(
    config: Config, network: Any, ui: Any
) -> None:
    async def scenario() -> None:
        # No LAN discovery: another chinwag on this machine would be found, and not offline.
        app = ChinwagApp(Session(config, override=network.config(), kdf=ui.cheap_kdf))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, OnboardingScreen))
            assert "no way to recover a lost passphrase" in ui.screen_text(app)
            await pilot.click("#display-name")
            await pilot.press(*"Alice")
            await pilot.click("#new-passphrase")
            await pilot.press(*"abc")
            await ui.wait_for_text(pilot, "weak")
            app.screen.query_one("#new-passphrase", Input).value = "abc tall purple giraffes dance"
            await ui.wait_for_text(pilot, "strong")
            await pilot.click("#repeat")
            await pilot.press(*"other", "enter")
            await ui.wait_for_text(pilot, "The two passphrases differ")
            app.screen.query_one("#repeat", Input).value = "abc tall purple giraffes dance"
            await pilot.click("#create")
            await ui.wait_for_text(pilot, "Send this link to people")
            assert app.messenger is not None
            identity = app.messenger.identity()
            assert identity.display_name == "Alice"
            assert identity.contact_link[:40] in ui.screen_text(app)
            assert "No room for the QR code" in ui.screen_text(app)  # 110x34: too small
            await pilot.press("escape")
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "offline")  # the health bar: no peers configured
            await pilot.press("ctrl+q")
        assert app.session.exists()

    asyncio.run(scenario())


def test_a_wrong_passphrase_is_a_sentence_and_the_right_one_unlocks(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, UnlockScreen))
            await pilot.click("#passphrase")
            await pilot.press(*"not it", "enter")
            await ui.wait_for_text(pilot, "Wrong passphrase")
            assert "Traceback" not in ui.screen_text(app)
            await pilot.press(*ui.passphrase, "enter")
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "add a contact with F2")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_a_wrong_passphrase_from_the_environment_shows_on_the_unlock_screen(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")

    async def scenario() -> None:
        session = Session(config, override=network.config())
        session.derive_early("not it")  # as `chinwag` does before Textual starts
        app = ChinwagApp(session, passphrase="not it")
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, UnlockScreen))
            await ui.wait_for_text(pilot, "Wrong passphrase")  # what unlocking returned
            await pilot.click("#passphrase")
            await pilot.press(*ui.passphrase, "enter")
            await ui.wait_until(pilot, running(app))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_a_passphrase_from_the_environment_skips_the_unlock_screen(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await pilot.press("f1")
            await ui.wait_until(pilot, on(app, HelpScreen))
            await ui.wait_for_text(pilot, "command palette: every action by name")
            await pilot.press("escape")
            await pilot.press("f4")
            await ui.wait_for_text(pilot, "Send this link to people")
            await pilot.press("escape")
            await pilot.press("ctrl+p", *"outbox")
            await ui.wait_for_text(pilot, "Everything not yet delivered")
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, OutboxScreen))
            await ui.wait_for_text(pilot, "Nothing waiting")
            await pilot.press("escape")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_request_accept_chat_reply_trace_verify_with_a_headless_contact(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Bob (headless) asks Alice (the TUI); she accepts from the request badge, they chat,
    her message reaches ✓✓ on screen, she replies to his with a quote, traces her message,
    and both compute the same verification emoji."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = CountingBells(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            alice_link = app.messenger.identity().contact_link
            await network.arun(bob.add_contact, alice_link, "hello, it's Bob from the pub")
            await ui.wait_for_text(pilot, "✉ 1 contact request")
            chat_list = app.screen.query_one(ChatList)
            chat_list.focus()
            chat_list.highlighted = 0
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, ContactsScreen))
            await ui.wait_for_text(pilot, "hello, it's Bob from the pub")
            assert "wants to chat with you" in ui.screen_text(app)
            app.screen.query_one(DataTable).focus()
            await pilot.press("a")
            await ui.wait_for_text(pilot, "contact")
            contacts = app.screen
            assert isinstance(contacts, ContactsScreen)
            await ui.wait_until(
                pilot, lambda: any(c.state == "mutual" for c in contacts.contacts.values())
            )
            await pilot.press("v")
            await ui.wait_until(pilot, on(app, VerifyScreen))
            await ui.wait_for_text(pilot, "compare these emoji")
            alice_key = app.messenger.identity().chat_key

            async def bob_sees() -> Any:
                return bob.verification(alice_key)

            bob_view = await network.arun(bob_sees)
            assert bob_view.state == "compare"
            assert shows_emoji(ui.screen_text(app), bob_view.emoji)
            await pilot.press("y")
            await ui.wait_for_text(pilot, "waiting for them to confirm")
            await network.arun(bob.confirm_verification, alice_key)
            await ui.wait_for_text(pilot, "✔ verified")
            await pilot.press("escape")
            await ui.wait_until(
                pilot, lambda: contacts.selected is not None and contacts.selected.verified
            )
            await pilot.press("enter")  # open the chat
            await ui.wait_until(pilot, running(app))
            await ui.wait_until(pilot, lambda: conversation(app).chat_id is not None)
            chat_id = conversation(app).chat_id
            await pilot.press(*"hi Bob", "alt+enter", *"second line", "enter")
            await ui.wait_until(
                pilot,
                lambda: (
                    "hi Bob" in conversation(app).visible_text()
                    and "✓✓" in conversation(app).visible_text()
                ),
                limit=40,
                what="delivered glyph",
            )
            assert "second line" in conversation(app).visible_text()
            received = await network.arun(bob.messages, chat_id)
            assert [m.text for m in received if not m.outgoing] == ["hi Bob\nsecond line"]

            await network.arun(bob.send_text, chat_id, "hello Alice, how are you?")
            await ui.wait_until(pilot, lambda: "how are you?" in conversation(app).visible_text())
            assert app.bells == 0  # the chat is in view: no bell
            view = conversation(app)
            view.focus()
            await pilot.press("up")  # select Bob's message (the newest)
            await pilot.press("r")
            await ui.wait_for_text(pilot, "replying to Bob")
            await pilot.press(*"very well", "enter")
            await ui.wait_until(
                pilot, lambda: "↱ Bob: hello Alice, how are you?" in view.visible_text()
            )
            reply = next(m for m in view.messages if m.text == "very well")
            assert reply.reply_to is not None

            first = next(m for m in view.messages if m.text.startswith("hi Bob"))
            view.focus()
            view.cursor = view.messages.index(first)
            await pilot.press("t")
            await ui.wait_until(pilot, on(app, TraceScreen))
            await ui.wait_for_text(pilot, "delivered")
            table = app.screen.query_one(DataTable)
            states = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            assert "queued" in states[0] and "delivered" in states[-1]
            evidence = str(table.get_row_at(table.row_count - 1)[2])
            assert f"ack_from={bob.identity().chat_key}" in evidence
            # While the trace covers the chat, a new message rings the bell.
            await network.arun(bob.send_text, chat_id, "are you there?")
            await ui.wait_until(pilot, lambda: app.bells == 1, what="the bell")
            await pilot.press("escape")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_outgoing_request_outbox_failure_reason_retry_and_discard(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice adds Carol, who is not online: the contacts screen shows the request's state and
    next re-send, the outbox lists it. With the network gone her messages to Bob fail with a
    reason and the retry key on screen; Ctrl+R retries one, the outbox retries all and
    discards."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    carol_link = network.start_messenger("carol").identity().contact_link
    network.stop("carol")
    budget = RetryPolicy(max_attempts=3, first_delay=1.5, max_delay=1.5, ack_timeout=3.0)

    async def scenario() -> None:
        app = ChinwagApp(
            Session(config, override=network.config(retry=budget)), passphrase=ui.passphrase
        )
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            await pilot.press("f2")
            await ui.wait_until(pilot, on(app, ContactsScreen))
            await pilot.click("#contact-link")
            app.screen.query_one("#contact-link", Input).value = carol_link  # as if pasted
            await pilot.press("tab", *"it's Alice", "enter")
            await ui.wait_for_text(pilot, "request sent, waiting for them")
            await ui.wait_for_text(pilot, "next in")
            # befriend Bob through the same screen, Bob accepts headlessly
            await pilot.click("#contact-link")
            app.screen.query_one("#contact-link", Input).value = bob.identity().contact_link
            await pilot.press("enter")
            alice_key = app.messenger.identity().chat_key

            async def bob_accepts() -> None:
                async def bob_has_the_request() -> bool:
                    return any(c.chat_key == alice_key for c in await bob.contacts())

                await wait_until(bob_has_the_request)
                await bob.accept_contact(alice_key)

            await network.arun(bob_accepts)
            contacts = app.screen
            assert isinstance(contacts, ContactsScreen)
            await ui.wait_until(
                pilot, lambda: any(c.state == "mutual" for c in contacts.contacts.values())
            )
            await pilot.press("escape")
            await pilot.press("f3")
            await ui.wait_until(pilot, on(app, OutboxScreen))
            await ui.wait_for_text(pilot, "contact request")
            await pilot.press("escape")
            await ui.wait_until(pilot, running(app))
            chats = app.screen.query_one(ChatList)
            await ui.wait_until(pilot, lambda: bool(chats.chats))
            main = app.screen
            assert isinstance(main, MainScreen)
            await main.open_chat(next(iter(chats.chats)))

            network.stop("service")
            await ui.wait_for_text(pilot, "○ offline")
            app.screen.query_one(Composer).focus()
            await pilot.press(*"into the void", "enter")
            await pilot.press(*"and again", "enter")
            await ui.wait_for_text(pilot, "retrying")
            await ui.wait_for_text(pilot, "failed: no peers (ctrl+r retries)", limit=40)
            await pilot.press("ctrl+r")  # offline: reconnects now, and queues it again
            await ui.wait_for_text(pilot, "Reconnecting now")
            await ui.wait_for_text(pilot, "Queued again with a fresh budget")
            await pilot.press("f3")
            await ui.wait_until(pilot, on(app, OutboxScreen))
            await ui.wait_for_text(pilot, "into the void")
            assert "no peers" in ui.screen_text(app)
            await pilot.press("R")
            await ui.wait_for_text(pilot, "There is no peer right now")
            outbox = app.screen
            assert isinstance(outbox, OutboxScreen)
            before = len(outbox.items)
            table = outbox.query_one(DataTable)
            row = next(i for i, item in enumerate(outbox.items) if item.summary.startswith("and"))
            table.move_cursor(row=row)
            await pilot.press("d")
            await ui.wait_until(pilot, lambda: len(outbox.items) == before - 1)
            assert all(not i.summary.startswith("and again") for i in outbox.items)
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_the_chats_show_from_the_store_before_the_messenger_is_up(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    chat_id = "c" * 64
    with Profiles(config.profiles_dir).unlock(config.profile, ui.passphrase) as store:
        store.conversations.add(
            Conversation(
                id=chat_id, kind="direct", title="Bob", pubsub_topic="/waku/2/rs/42/0",
                content_topic="/chinwag/1/x/proto", created_at=1_000, last_activity_at=2_000,
            )
        )  # fmt: skip
        store.messages.add(
            conversation_id=chat_id, message_id="m1", sender="bob", outgoing=False,
            body="an old hello from Bob", sent_at=1_500, state="received", now=1_500,
            received_at=1_500,
        )  # fmt: skip
        store.messages.add(
            conversation_id=chat_id, message_id="m2", sender="me", outgoing=True,
            body="my old answer", sent_at=1_600, state="delivered", now=1_600,
        )  # fmt: skip

    async def scenario() -> None:
        app = HeldBack(Session(config, override=network.config()), passphrase=ui.passphrase)
        HeldBack.release.clear()
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "my old answer")
            text = ui.screen_text(app)
            assert "Bob" in text and "an old hello from Bob" in text
            assert "starting" in text  # the health bar: no network yet, and it says so
            assert app.messenger is None and app.ready_at is not None
            # Written before the network is up: kept, and sent once it is.
            composer = app.screen.query_one(Composer)
            composer.focus()
            await pilot.press(*"typed early", "enter")
            await ui.wait_for_text(pilot, "Sending as soon as the network core has started")
            HeldBack.release.set()
            await ui.wait_until(pilot, lambda: app.messenger is not None)
            await ui.wait_for_text(pilot, "offline")  # the messenger's health replaced it
            # This chat was only seeded (no contact behind it), so the messenger refuses the
            # send with its own sentence: proof the held message went to the real messenger.
            await ui.wait_for_text(pilot, "no chat")
            # Refused, it is not lost: it is back in the composer.
            await ui.wait_until(pilot, lambda: composer.text == "typed early", what="given back")


def test_a_contacts_verification_request_prompts_decline_or_compare(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Bob asks to verify: a prompt appears wherever Alice is; n declines (Bob sees it
    cancelled); a request Bob withdraws takes its prompt away; on the next, y opens the
    emoji, and both confirming verifies."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = CountingBells(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            alice_key = await befriend_headless(app, pilot, network, ui, bob)

            await pilot.press("f1")  # the prompt comes over whatever screen is open
            await ui.wait_until(pilot, on(app, HelpScreen))
            await network.arun(bob.start_verification, alice_key)
            await ui.wait_until(pilot, on(app, VerificationRequestScreen))
            await ui.wait_for_text(pilot, "Bob wants to verify you by comparing emoji")
            assert app.bells == 1
            # Keys typed for something else as it pops up do not answer it...
            app.screen.armed_at = float("inf")  # type: ignore[attr-defined]
            await pilot.press("n")
            assert isinstance(app.screen, VerificationRequestScreen)
            # ...only once it has been on screen a moment.
            app.screen.armed_at = 0.0  # type: ignore[attr-defined]
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, HelpScreen))
            await network.arun(bob_reaches, bob, alice_key, "cancelled")

            await pilot.press("escape")
            await network.arun(bob.start_verification, alice_key)  # and he thinks better of it
            await ui.wait_until(pilot, on(app, VerificationRequestScreen))
            await network.arun(bob.cancel_verification, alice_key)
            await ui.wait_for_text(pilot, "Bob stopped the verification")
            await ui.wait_until(pilot, running(app))

            await network.arun(bob.start_verification, alice_key)
            await ui.wait_until(pilot, on(app, VerificationRequestScreen))
            await ui.wait_until(pilot, lambda: app.screen._armed(), what="the prompt armed")
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, VerifyScreen))
            await ui.wait_for_text(pilot, "compare these emoji")
            await network.arun(bob_reaches, bob, alice_key, "compare")
            bob_emoji = bob.verification(alice_key).emoji
            assert shows_emoji(ui.screen_text(app), bob_emoji)
            await pilot.press("y")
            await ui.wait_for_text(pilot, "waiting for them to confirm")
            await network.arun(bob.confirm_verification, alice_key)
            await ui.wait_for_text(pilot, "✔ verified")
            await network.arun(bob_reaches, bob, alice_key, "verified")
            await pilot.press("escape")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


async def bob_reaches(bob: Any, alice_key: str, state: str) -> None:
    """On the network thread: until Bob's verification with Alice is in `state`."""
    await wait_until(lambda: bob.verification(alice_key).state == state, what=f"Bob {state}")


def test_changing_the_display_name_from_the_palette_reaches_the_contact(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            alice_key = await befriend_headless(app, pilot, network, ui, bob)
            main = app.screen
            assert isinstance(main, MainScreen)
            chats = main.query_one(ChatList)
            await ui.wait_until(pilot, lambda: bool(chats.chats))
            await main.open_chat(next(iter(chats.chats)))
            main.query_one(Composer).focus()
            await pilot.press(*"hi", "enter")
            await ui.wait_until(pilot, lambda: "Alice: hi" in conversation(app).visible_text())

            await pilot.press("ctrl+p", *"display name")
            await ui.wait_for_text(pilot, "The name your contacts see")
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, DisplayNameScreen))
            await ui.wait_for_text(pilot, "What your contacts see")
            field = app.screen.query_one(Input)
            assert field.value == "Alice"
            field.value = "  \u200b "
            await pilot.press("enter")
            await ui.wait_for_text(pilot, "A display name cannot be empty.")
            field.value = ""
            await pilot.press(*"Ally Cat", "enter")
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "You are now Ally Cat")
            assert app.messenger is not None
            assert app.messenger.identity().display_name == "Ally Cat"
            await ui.wait_until(pilot, lambda: "Ally Cat: hi" in conversation(app).visible_text())

            async def bob_sees_the_name() -> bool:
                return [c.display_name for c in await bob.contacts()] == ["Ally Cat"]

            await network.arun(wait_until, bob_sees_the_name)
            assert [c.chat_key for c in await network.arun(bob.contacts)] == [alice_key]
            await pilot.press("f4")
            await ui.wait_for_text(pilot, "Send this link to people")
            assert "Ally Cat" in ui.screen_text(app)
            await pilot.press("escape")
            await network.arun(bob.set_display_name, "Robert")  # and the other way round
            await ui.wait_for_text(pilot, "Robert  ·  cw1")
            assert "▌Robert" in ui.screen_text(app)  # the chat list too
            await pilot.press("escape")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_messages_typed_while_the_core_starts_are_sent_in_the_order_typed(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    typed = [f"early {i}" for i in range(4)]

    async def bob_has(texts: list[str]) -> None:
        got: list[str] = []

        async def arrived() -> bool:
            nonlocal got
            chats = await bob.chats()
            got = [m.text for m in await bob.messages(chats[0].id)] if chats else []
            return [t for t in got if t.startswith("early")] == texts

        # On Bob's trio thread: the deadline keeps a failure from hanging it.
        await wait_until(arrived, what=lambda: f"Bob to have {texts}, not {got}")

    async def scenario() -> None:
        first = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with first.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(first))
            await befriend_headless(first, pilot, network, ui, bob)
            await pilot.press("ctrl+q")

        HeldBack.release.clear()
        app = HeldBack(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_until(pilot, lambda: conversation(app).chat_id is not None)
            app.screen.query_one(Composer).focus()
            for text in typed:
                await pilot.press(*text, "enter")
            assert app.messenger is None  # all four written before the core is up
            HeldBack.release.set()
            await ui.wait_until(pilot, running(app))
            await network.arun(bob_has, typed)
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_spam_protection_the_intro_limit_and_a_pasted_half_pair(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """With room for one stranger's request: Bob's is kept (they become contacts), Carol's is
    dropped, and the contacts screen says so. An intro over the limit is refused naming it
    and stays in its field. A message holding half a surrogate pair (a broken paste) is sent
    with U+FFFD in its place rather than refused."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    carol = network.start_messenger("carol")
    one_stranger = StrangerPolicy(rate=0.0001, burst=1, report_every=0.5)

    async def scenario() -> None:
        app = ChinwagApp(
            Session(config, override=network.config(strangers=one_stranger)),
            passphrase=ui.passphrase,
        )
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await befriend_headless(app, pilot, network, ui, bob)
            await network.arun(carol.add_contact, app.messenger.identity().contact_link, "hi")
            await pilot.press("f2")
            await ui.wait_until(pilot, on(app, ContactsScreen))
            await ui.wait_for_text(pilot, "1 request dropped (spam protection)")

            await pilot.click("#contact-link")
            app.screen.query_one("#contact-link", Input).value = carol.identity().contact_link
            intro = app.screen.query_one("#contact-intro", Input)
            intro.value = "x" * (MAX_INTRO_LENGTH + 1)
            await pilot.click("#add-contact")
            await ui.wait_for_text(pilot, f"at most {MAX_INTRO_LENGTH} characters")
            assert intro.value == "x" * (MAX_INTRO_LENGTH + 1)  # kept, to shorten

            await pilot.press("escape")
            await ui.wait_until(pilot, running(app))
            chats = app.screen.query_one(ChatList)
            await ui.wait_until(pilot, lambda: bool(chats.chats))
            main = app.screen
            assert isinstance(main, MainScreen)
            chat_id = next(iter(chats.chats))
            await main.open_chat(chat_id)
            composer = app.screen.query_one(Composer)
            composer.post_message(Composer.Submitted("half \ud83d a pair"))
            await ui.wait_until(
                pilot, lambda: "half \ufffd a pair" in conversation(app).visible_text()
            )

            async def bob_has_it() -> bool:
                return any(not m.outgoing for m in await bob.messages(chat_id))

            await network.arun(wait_until, bob_has_it)  # on Bob's trio thread, with its deadline
            [received] = [m for m in await network.arun(bob.messages, chat_id) if not m.outgoing]
            assert received.text == "half \ufffd a pair"
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
