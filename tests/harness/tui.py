"""Helpers for Pilot tests of the TUI: which screen shows, befriending a headless contact
(tests/ui/conftest.py runs the network), the real app with its messenger held back, and
`ViewHost`, the minimal host that runs one real screen fed hand-made views."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from textual.app import App
from textual.widgets import Input

import ui
from chat.session import OpenProfile
from harness.waiting import wait_until
from ui.app import ChinwagApp
from ui.host import NetworkSetup
from ui.screens.main import MainScreen

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def on(app: ChinwagApp, kind: type) -> Callable[[], bool]:
    """The screen shows, composed and mounted: a screen is app.screen from the switch on,
    before its widgets exist."""
    return lambda: isinstance(app.screen, kind) and app.screen.is_mounted


def running(app: ChinwagApp) -> Callable[[], bool]:
    """The main screen with the messenger attached (the screen itself comes first, from the
    store, while the node starts)."""
    return lambda: on(app, MainScreen)() and app.messenger is not None


async def befriend_headless(app: ChinwagApp, pilot: Any, network: Any, ui: Any, bob: Any) -> str:
    """Bob (headless) asks the TUI's user, who accepts; returns Alice's chat key once Bob
    sees the contact as mutual."""
    assert app.messenger is not None
    await ui.wait_for_text(pilot, "● online")
    await network.arun(bob.add_contact, app.messenger.identity().contact_link, "")
    await ui.wait_for_text(pilot, "✉ 1 contact request")
    await app.call(app.messenger.accept_contact, bob.identity().chat_key)
    alice_key: str = app.messenger.identity().chat_key

    async def bob_mutual() -> bool:
        return any(c.state == "mutual" for c in await bob.contacts())

    await network.arun(wait_until, bob_mutual)  # on Bob's trio thread, with its deadline
    return alice_key


class HeldBack(ChinwagApp):
    """The real app whose messenger starts only when the test says so: what the user sees
    in the moment between unlocking and the node being up."""

    release = threading.Event()

    async def _messenger_main(self, opened: OpenProfile) -> None:
        await trio.to_thread.run_sync(self.release.wait, abandon_on_cancel=True)
        await super()._messenger_main(opened)


class ViewHost(App[None]):
    """The real screens and stylesheet, fed views directly (no messenger): what screens need
    of the host, with a fixed clock."""

    CSS_PATH = str(Path(ui.__file__).parent / "app.tcss")
    TITLE = "Harness"  # the snapshots' window title

    def __init__(self, screen: Callable[[], Any], feed: Callable[[Any], None]) -> None:
        super().__init__()
        self.clock: Callable[[], float] = lambda: NOW
        self.messenger = None
        self.telemetry = None
        self.messenger_failure: str | None = None
        self.chat_source: Callable[[], None] = lambda: None  # views are fed, not read
        self._make_screen = screen
        self._feed = feed

    def network_setup(self) -> NetworkSetup:
        return NetworkSetup(
            config_file="/home/alice/.config/chinwag/config.toml",
            peers=0,
            lan_discovery=True,
            log_file="/home/alice/.local/share/chinwag/profiles/default/logs/chinwag.log",
        )

    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        screen = self._make_screen()
        await self.push_screen(screen)
        self._feed(screen)


async def settle(pilot: Any) -> None:
    """Let a screen under a snapshot finish drawing, with every text field's cursor steady:
    a blinking cursor is drawn or not depending on when the picture is taken (under load a
    snapshot can land on the other half of the blink)."""
    await pilot.pause()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()
