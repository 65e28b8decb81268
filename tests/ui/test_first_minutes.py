"""The first ten minutes of a new user (issue 15), with the real app against real messengers
on loopback: keys arrive as terminal bytes (tests/harness/terminal.py), all at once when the
test types ahead, as a fast typist or a password manager would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harness.terminal import (
    CTRL_P,
    ENTER,
    ESCAPE,
    F1,
    F2,
    F3,
    F4,
    F6,
    alt,
    paste,
    send_bytes,
)
from harness.tui import HeldBack, befriend_headless, on, running
from harness.waiting import wait_until
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, Static

from chat.config import Config
from chat.events import MAX_TEXT_LENGTH
from chat.session import Session, clean_link
from ui.app import ChinwagApp
from ui.screens.contacts import ContactsScreen
from ui.screens.help import HelpScreen
from ui.screens.link import LinkScreen
from ui.screens.main import MainScreen
from ui.screens.onboarding import OnboardingScreen
from ui.screens.outbox import OutboxScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer

SIZE = (110, 34)


def text_of(app: ChinwagApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def link_rows(screen: str) -> list[str]:
    """The screen rows that show a contact link, as a user selects them (box and all): from
    the row where it starts to the first row without link characters."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if "chinwag:" in line)
    rows = [lines[start]]
    for line in lines[start + 1 :]:
        if not clean_link(line):
            break
        rows.append(line)
    return rows


async def bob_got(network: Any, bob: Any, texts: list[str]) -> None:
    """Bob's chat shows exactly `texts` from Alice, in order."""

    got: list[str] = []

    async def arrived() -> bool:
        nonlocal got
        chats = await bob.chats()
        messages = await bob.messages(chats[0].id, limit=200) if chats else []
        got = [m.text for m in messages if not m.outgoing]
        return got == texts

    async def until_arrived() -> None:  # on Bob's trio thread, with a deadline
        await wait_until(arrived, what=lambda: f"Bob to have {texts}, not {got}")

    await network.arun(until_arrived)


def test_onboarding_keeps_type_ahead_in_its_field_and_a_weak_passphrase_needs_a_yes(
    config: Config, network: Any, ui: Any
) -> None:
    """Item 9: a password manager types name, Tab, passphrase, Tab, passphrase, Enter in one
    burst; each lands in its field. "abc" is refused until "use it anyway" is ticked."""

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config(), kdf=ui.cheap_kdf))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, OnboardingScreen))
            send_bytes(app, "Bob\tabc\tabc\r")
            await ui.wait_for_text(pilot, "This passphrase is weak")
            fields = {f.id: f.value for f in app.screen.query(Input)}
            assert fields == {"display-name": "Bob", "new-passphrase": "abc", "repeat": "abc"}
            assert not app.session.exists()
            await pilot.click("#use-weak")
            await pilot.click("#create")
            await ui.wait_for_text(pilot, "Send this link to people")
            assert app.messenger is not None
            assert app.messenger.identity().display_name == "Bob"
            await pilot.press("ctrl+q")
        assert app.session.exists()

    asyncio.run(scenario())


def test_the_link_fits_80x24_copies_and_a_link_copied_off_the_screen_adds_the_contact(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 1: at 80x24 the whole link shows (the QR code gives way to a note); c and the
    palette's "Copy my contact link" put it on the clipboard; Bob's link, copied off the
    same screen with the box around it and pasted, adds him; a bigger window shows the QR."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            link = app.messenger.identity().contact_link  # type: ignore[union-attr]
            send_bytes(app, F4)
            await ui.wait_until(pilot, on(app, LinkScreen))
            screen = ui.screen_text(app)
            assert clean_link("\n".join(link_rows(screen))) == link
            assert "No room for the QR code" in screen and "chinwag link" in screen
            assert "▀" not in screen
            send_bytes(app, "c")
            await ui.wait_until(pilot, lambda: app.clipboard == link, what="copied with c")
            send_bytes(app, ESCAPE)
            await ui.wait_until(pilot, on(app, MainScreen))

            app.copy_to_clipboard("something else")
            send_bytes(app, CTRL_P)
            await ui.wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            send_bytes(app, "Copy my contact")
            await ui.wait_for_text(pilot, "Copy my contact link")
            send_bytes(app, ENTER)
            await ui.wait_until(pilot, lambda: app.clipboard == link, what="copied by the palette")

            # Bob's link as his screen shows it, rows selected with the box's borders.
            await app.push_screen(LinkScreen(bob.identity()))
            await ui.wait_for_text(pilot, "Send this link to people")
            rows = link_rows(ui.screen_text(app))
            assert len(rows) > 1 and "│" in rows[0]
            send_bytes(app, ESCAPE, F2)
            await ui.wait_until(pilot, on(app, ContactsScreen))
            send_bytes(app, paste("\n".join(rows)))
            field = app.screen.query_one("#contact-link", Input)
            await ui.wait_until(pilot, lambda: field.value == bob.identity().contact_link)
            send_bytes(app, ENTER)
            await ui.wait_for_text(pilot, "request sent")
            send_bytes(app, ESCAPE)
            await ui.wait_until(pilot, on(app, MainScreen))

            await pilot.resize_terminal(120, 36)
            send_bytes(app, F4)
            await ui.wait_until(pilot, on(app, LinkScreen))
            await ui.wait_for_text(pilot, "▀")  # the QR code, beside the link
            assert clean_link("".join(link_rows(ui.screen_text(app)))) == link
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_after_a_restart_the_title_has_the_key_and_typing_on_the_chat_list_is_a_message(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Items 5 and 10: the chat opens from the store, without the contact's key; once the
    network part is up the title shows it. Right after unlocking the chat list has the
    focus: what the user types goes to the composer, and Enter sends it."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

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
            await ui.wait_for_text(pilot, "no messages yet")
            assert bob.identity().chat_key not in text_of(app, "#chat-title")  # not known yet
            HeldBack.release.set()
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, f"Bob  ·  {bob.identity().chat_key}")
            assert isinstance(app.screen.focused, ChatList)
            send_bytes(app, "hello Bob", ENTER)
            await bob_got(network, bob, ["hello Bob"])
            assert isinstance(app.screen.focused, Composer)
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_the_keys_the_help_calls_global_work_from_the_composer(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 8: Alt+A (no unread chat: it says so), F6 (theme), F1, F2, F3, F4 and Ctrl+P
    act from the composer instead of typing a letter or selecting a line."""
    make_profile("Alice")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            composer = app.screen.query_one(Composer)
            composer.focus()
            await pilot.pause()
            send_bytes(app, alt("a"))
            await ui.wait_for_text(pilot, "No unread messages")
            theme = app.theme
            send_bytes(app, F6)
            await ui.wait_until(pilot, lambda: app.theme != theme, what="the theme switched")
            assert composer.text == "" and composer.selected_text == ""
            for key, screen in ((F1, HelpScreen), (F2, ContactsScreen), (F3, OutboxScreen)):
                send_bytes(app, key)
                await ui.wait_until(pilot, on(app, screen))
                send_bytes(app, ESCAPE)
                await ui.wait_until(pilot, on(app, MainScreen))
            composer.focus()
            await pilot.pause()
            send_bytes(app, F4)
            await ui.wait_until(pilot, on(app, LinkScreen))
            send_bytes(app, ESCAPE)
            await ui.wait_until(pilot, on(app, MainScreen))
            composer.focus()
            await pilot.pause()
            send_bytes(app, CTRL_P)
            await ui.wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            send_bytes(app, ESCAPE)
            await ui.wait_until(pilot, on(app, MainScreen))
            assert composer.text == ""
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_with_no_peers_the_main_screen_says_how_to_add_one(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 6: no peer configured, none found: the config file, --peer, --fleet and whether
    LAN discovery is on; the hint goes once a peer is there."""
    make_profile("Alice")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "No peers")
            hint = text_of(app, "#network-hint")
            assert str(config.config_file) in hint
            assert "--peer" in hint and "--fleet" in hint and "LAN discovery is off" in hint
            assert "[network] peers" in hint
            await pilot.press("ctrl+q")

        network.start_service()
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            assert not app.screen.query_one("#network-hint").display
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_a_network_part_that_cannot_start_says_why_instead_of_starting_forever(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 6: the node cannot listen where it was told: the health bar and a hint say so
    in a sentence (with the log file), never "starting…" forever; what is typed then stays
    in the composer."""
    make_profile("Alice")
    unreachable = network.config(listen_addrs=("/ip4/203.0.113.1/tcp/4001",))

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=unreachable), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "○ stopped: cannot listen on")
            hint = text_of(app, "#network-hint")
            assert "The network part stopped: cannot listen on" in hint
            assert str(config.log_file) in hint
            screen = ui.screen_text(app)
            assert "starting" not in screen and "Traceback" not in screen
            app.screen.query_one(Composer).focus()
            await pilot.pause()
            send_bytes(app, "still here", ENTER)
            await ui.wait_for_text(pilot, "Open a chat first")
            assert app.screen.query_one(Composer).text == "still here"
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_a_paste_over_the_limit_stays_in_the_composer_and_can_go_in_parts(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 7: a counter near the limit; over it, Enter sends nothing and the text stays;
    the palette's "Send in parts" sends all of it, in order."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    words = " ".join(f"word{n:05d}" for n in range(2_000))  # 19,999 characters
    assert MAX_TEXT_LENGTH < len(words) < 2 * MAX_TEXT_LENGTH

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await befriend_headless(app, pilot, network, ui, bob)
            await ui.wait_until(pilot, lambda: app.screen.query_one(ChatList).chats != {})
            send_bytes(app, ENTER)  # open the chat: the composer has the focus
            composer = app.screen.query_one(Composer)
            await ui.wait_until(pilot, lambda: composer.has_focus, what="the composer")
            send_bytes(app, paste(words[:15_000]))
            await ui.wait_for_text(pilot, f"15,000 / {MAX_TEXT_LENGTH:,}")  # near the limit
            composer.clear()
            send_bytes(app, paste(words), ENTER)
            await ui.wait_for_text(pilot, "Not sent: 3,615 characters")
            assert composer.border_subtitle.startswith("19,999 / 16,384: 3,615 too many")
            assert composer.text == words
            send_bytes(app, CTRL_P)
            await ui.wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            send_bytes(app, "Send in parts")
            await ui.wait_for_text(pilot, "too long for one message")
            send_bytes(app, ENTER)
            await ui.wait_until(pilot, lambda: composer.text == "", what="sent in parts")
            first = words[: MAX_TEXT_LENGTH + 1].rsplit(" ", 1)[0]  # cut at the last space
            second = words[len(first) + 1 :]
            await bob_got(network, bob, [first, second])
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_the_contacts_hint_says_what_the_focused_part_does(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Item 10: in the link field the hint does not offer "a accept" (a types an a)."""
    make_profile("Alice")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            send_bytes(app, F2)
            await ui.wait_until(pilot, on(app, ContactsScreen))
            await ui.wait_until(pilot, lambda: app.screen.focused is not None)
            assert "a accept" not in text_of(app, "#contacts-hint")
            assert "Enter adds" in text_of(app, "#contacts-hint")
            app.screen.query_one(DataTable).focus()
            await ui.wait_until(pilot, lambda: "a accept" in text_of(app, "#contacts-hint"))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
