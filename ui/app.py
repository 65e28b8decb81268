"""The chinwag TUI: unlock or create a profile, then talk to `chat.Messenger` through the
trio guest-run bridge.

The app owns three things for its lifetime: the trio bridge, the open profile (and its
lock; chat/session.py opens it), and the messenger running in the bridge's nursery. The UI
talks to the core only (the messenger, its events, the session): never to storage or the
node. Screens reach the app through the typed host protocol (ui/host.py) and call the
messenger through `ChinwagApp.call`, which turns a refusal into a notification instead of
a traceback; the app tells them what happened with messages (ui/messages.py).

Launch order, for speed: libp2p (via chat.messenger) is imported in a worker thread while
the passphrase is derived; once the profile is open the main screen shows the chats read
from the database (`chat_source()`), and attaches to the messenger when its node is up. The
chat list does not wait for libp2p.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

import trio
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.screen import Screen

from chat.errors import UserError
from chat.events import VerificationUpdated
from chat.session import ChatSource, OpenProfile, Session
from ui.bridge import BridgeClosed, TrioBridge
from ui.host import ChatHost, NetworkSetup
from ui.messages import (
    DisplayNameChanged,
    MessengerEvent,
    MessengerFailed,
    MessengerReady,
    MessengerStarted,
    MessengerStopped,
)
from ui.notify import desktop_notification
from ui.terminal import no_terminal_logging, use_key_parser

if TYPE_CHECKING:
    from chat.messenger import Messenger
    from chat.session import ProfileTelemetry

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

EVENT_BUFFER = 10_000
"""Events the UI may fall behind by before it loses some (the messenger counts them)."""


def _preload_messenger() -> None:
    """Import chat.messenger (and libp2p under it) off the UI thread, once."""
    with contextlib.suppress(Exception):
        importlib.import_module("chat.messenger")


def _reason(exc: BaseException) -> str:
    """What went wrong, as one sentence: the first error inside nursery groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


class ChinwagApp(App[int]):
    """`ChinwagApp(session).run()`; `passphrase` skips typing it on the unlock screen (its
    key may be being derived already: `Session.derive_early`)."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "chinwag"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        # Priority: the composer (a TextArea) binds F6 to "select line" otherwise.
        Binding("f6", "toggle_dark", "Theme", show=False, priority=True),
        Binding("ctrl+r", "reconnect", "Reconnect", show=False),
        Binding("f8", "bandwidth", "Bandwidth", show=False),
        Binding("f10", "telemetry", "What we send", show=False),
    ]

    def __init__(self, session: Session, *, passphrase: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.bridge = TrioBridge()
        self.clock = session.clock
        self.messenger: Messenger | None = None
        self.messenger_ready = asyncio.Event()
        self.opened: OpenProfile | None = None
        """The unlocked profile, from unlocking until the app stops."""
        self._initial_passphrase = passphrase
        self._core_stopping: asyncio.Future[None] | None = None
        self._verification_states: dict[str, str] = {}
        """The last verification state seen per contact: tells their start from ours."""
        self.startup_started = time.perf_counter()
        self.ready_at: float | None = None
        """perf_counter when the chat list was first shown (the launch benchmark reads it)."""
        self.messenger_failure: str | None = None
        """Why the messenger stopped (a sentence), once it has."""
        self.telemetry: ProfileTelemetry | None = None
        """The profile's opt-in telemetry, while the messenger runs."""

    def get_driver_class(self) -> type[Driver]:
        use_key_parser()  # Alt+Enter as alt+enter (ui/terminal.py)
        return super().get_driver_class()

    # ---- lifecycle ---------------------------------------------------------------------
    @property
    def profile(self) -> str:
        return self.session.profile

    async def on_mount(self) -> None:
        threading.Thread(target=_preload_messenger, name="preload", daemon=True).start()
        self.theme = "textual-dark"
        await self.bridge.start()
        from ui.screens.onboarding import OnboardingScreen
        from ui.screens.unlock import UnlockScreen

        if not self.session.exists():
            await self.push_screen(OnboardingScreen())
            return
        # With a passphrase given, the unlock screen unlocks at once and shows the error
        # that unlocking returned, if any.
        await self.push_screen(UnlockScreen(self._initial_passphrase))

    async def unlock(self, passphrase: str) -> str | None:
        """Open the profile and start the messenger; or the sentence that says why not."""
        return await self._open(self.session.unlock, passphrase)

    async def create_profile(self, display_name: str, passphrase: str) -> str | None:
        """Create the profile with its chat identity, then start the messenger."""
        return await self._open(self.session.create, display_name, passphrase)

    async def _open(self, how: Callable[..., OpenProfile], *args: str) -> str | None:
        """Show the chats at once, read from the database; the messenger (libp2p, the node)
        starts meanwhile and the main screen attaches to it when it is up."""
        from ui.screens.main import MainScreen

        try:  # on a thread: the key derivation takes about half a second by design
            opened = await self.bridge.call(trio.to_thread.run_sync, how, *args)
        except UserError as exc:
            return str(exc)
        self.opened = opened
        self.bridge.start_soon(self._messenger_main, opened)
        if not isinstance(self.screen, MainScreen):
            # Not awaited: we are inside the unlock (or onboarding) screen's own handler,
            # which the switch has to wait for.
            self.switch_screen(MainScreen())
        return None

    def chat_source(self) -> ChatSource | None:
        """Where chats and messages are read from: the messenger once it runs, before that
        the database alone (no live outbox state yet), None before unlocking."""
        if self.messenger is not None:
            return self.messenger
        return self.opened.reader() if self.opened is not None else None

    async def wait_for_messenger(self) -> Messenger | None:
        """The messenger once it runs; None if it stopped (the app says why)."""
        await self.messenger_ready.wait()
        return self.messenger

    async def _messenger_main(self, opened: OpenProfile) -> None:
        """Trio side: run the messenger and forward its events until the bridge stops."""
        try:
            # Off the loop: the preload thread may be mid-import, and waiting for its module
            # lock here would freeze the UI (the main screen's first paint) until it is done.
            await trio.to_thread.run_sync(importlib.import_module, "chat.messenger")
            config = self.session.messenger_config()
            messenger = opened.messenger(config)
            telemetry = self.session.telemetry(opened)
            async with messenger.run(), trio.open_nursery() as nursery:
                events = messenger.subscribe(EVENT_BUFFER)
                # Attached as `chinwag serve` attaches it, before the UI hears of the messenger
                # (off unless the person opted in; CHINWAG_TELEMETRY=off beats every setting).
                await telemetry.start(nursery, messenger, "light" if config.light else "relay")
                self.telemetry = telemetry
                self.messenger = messenger
                self._publish_link()
                self.post_message(MessengerReady())
                if opened.new:
                    self.call_later(self.action_my_link)
                with events:
                    async for event in events:
                        self.post_message(MessengerEvent(event))
        except Exception as exc:
            log.exception("the messenger stopped")
            self.post_message(MessengerFailed(_reason(exc)))
        finally:
            self.messenger = None
            self.telemetry = None

    def on_messenger_ready(self, _: MessengerReady) -> None:
        self.messenger_ready.set()
        for screen in self.screen_stack:
            screen.post_message(MessengerStarted())
        self.run_worker(self._ask_consent())

    async def _ask_consent(self) -> None:
        """Once, after unlocking: the first-run telemetry question, if nothing was chosen and
        there is a collector (or dry-run file) to send to."""
        from ui.screens.telemetry import ConsentScreen

        telemetry = self.telemetry
        if telemetry is None or not await self.call(telemetry.needs_consent):
            return
        await self.push_screen(ConsentScreen(telemetry.destination))

    def on_messenger_failed(self, message: MessengerFailed) -> None:
        self.messenger_ready.set()
        self.messenger_failure = message.reason
        for screen in self.screen_stack:
            screen.post_message(MessengerStopped(message.reason))
        self.notify(
            f"The network part stopped: {message.reason}. "
            f"Details are in the log file {self.session.config.log_file}.",
            title="chinwag",
            severity="error",
            timeout=30,
        )

    def network_setup(self) -> NetworkSetup:
        settings = self.session.settings
        config = self.messenger.config if self.messenger is not None else None
        peers = len(config.peers if config is not None else settings.peers if settings else ())
        if config is not None and config.mdns is not None:
            lan = config.mdns
        else:  # the client node's default: LAN discovery when no peer is configured
            lan = not peers and not (config.store_peers if config is not None else ())
        return NetworkSetup(
            config_file=str(self.session.config.config_file),
            peers=peers,
            lan_discovery=lan,
            log_file=str(self.session.config.log_file),
        )

    def _publish_link(self) -> None:
        """Keep the current link where `chinwag link` reads it while we hold the profile."""
        if self.messenger is not None:
            self.session.publish_link(self.messenger.identity().contact_link)

    def on_messenger_event(self, message: MessengerEvent) -> None:
        event = message.event
        for screen in self.screen_stack:
            handler = getattr(screen, "handle_event", None)
            if handler is not None:
                handler(event)
        if isinstance(event, VerificationUpdated):
            view = event.verification
            before = self._verification_states.get(view.chat_key)
            self._verification_states[view.chat_key] = view.state
            if view.state == "compare" and before != "compare":
                # Their start arrives as "compare" at once; ours went through "started".
                self.run_worker(self._offer_verification(view.chat_key, theirs=before != "started"))

    async def _offer_verification(self, chat_key: str, *, theirs: bool) -> None:
        """Ask whether to compare emoji now, unless a screen for it is already open."""
        from ui.screens.verify import VerifyScreen
        from ui.screens.verify_request import VerificationRequestScreen

        def shown() -> bool:
            return any(
                isinstance(s, VerifyScreen | VerificationRequestScreen)
                and s.contact.chat_key == chat_key
                for s in self.screen_stack
            )

        messenger = self.messenger
        if messenger is None or shown():
            return
        contacts = await self.call(messenger.contacts) or []
        contact = next((c for c in contacts if c.chat_key == chat_key), None)
        if contact is None or shown():
            return
        if self.session.config.notify_bell and theirs:
            self.bell()
        await self.push_screen(VerificationRequestScreen(contact, theirs=theirs))

    def announce_message(self, chat_name: str) -> None:
        if self.session.config.notify_bell:
            self.bell()
        if self.session.config.notify_desktop:
            self.run_worker(desktop_notification("chinwag", f"New message from {chat_name}"))

    async def shutdown_core(self) -> None:
        """Stop the messenger (cancel the trio root and wait), then close the profile.

        Quitting and unmounting both call this; every caller waits for the one shutdown to
        finish, so the asyncio loop never closes under a trio run that is still ending."""
        if self._core_stopping is None:
            self._core_stopping = asyncio.ensure_future(self._shutdown_core())
        await asyncio.shield(self._core_stopping)

    async def _shutdown_core(self) -> None:
        with contextlib.suppress(Exception):
            await self.bridge.stop()
        if self.opened is not None:
            self.opened.close()  # the database, then the profile's lock
            self.opened = None

    async def action_quit(self) -> None:
        await self.shutdown_core()
        self.exit(0)

    async def on_unmount(self) -> None:
        await self.shutdown_core()

    # ---- calling the messenger ---------------------------------------------------------
    async def call(
        self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Run a messenger coroutine in trio; a refusal becomes a notification and None."""
        try:
            return await self.bridge.call(functools.partial(fn, *args, **kwargs))
        except UserError as exc:
            self.notify(str(exc), severity="error")
        except BridgeClosed:
            self.notify("the network core is not running", severity="error")
        return None

    # ---- actions every screen has ------------------------------------------------------
    def action_help(self) -> None:
        from ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_reconnect(self) -> None:
        await self.reconnect_now()

    async def reconnect_now(self) -> None:
        """Dial every known peer now instead of at its next scheduled dial."""
        from ui.format import reconnect_notice

        messenger = self.messenger
        if messenger is None:
            self.notify("The network core is not running yet.", severity="warning")
            return
        health = await self.call(messenger.reconnect_now)
        if health is not None:
            self.notify(reconnect_notice(health))

    def action_bandwidth(self) -> None:
        from ui.screens.bandwidth import BandwidthScreen

        if self.messenger is not None and not isinstance(self.screen, BandwidthScreen):
            self.push_screen(BandwidthScreen())

    def action_telemetry(self) -> None:
        from ui.screens.telemetry import TelemetryScreen

        if self.telemetry is not None and not isinstance(self.screen, TelemetryScreen):
            self.push_screen(TelemetryScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_my_link(self) -> None:
        from ui.screens.link import LinkScreen

        if self.messenger is not None and not isinstance(self.screen, LinkScreen):
            self.push_screen(LinkScreen(self.messenger.identity()))

    def action_copy_link(self) -> None:
        """Copy the contact link to the clipboard: OSC 52, which tmux keeps as a buffer
        (with set-clipboard on) and most terminals put on the system clipboard."""
        if self.messenger is None:
            self.notify("Your link is ready once the network part has started.")
            return
        self.copy_to_clipboard(self.messenger.identity().contact_link)
        self.notify(
            "Copied your contact link to the clipboard (if your terminal takes OSC 52; in "
            "tmux, with set-clipboard on).",
            title="My link",
        )

    def action_change_name(self) -> None:
        from ui.screens.display_name import DisplayNameScreen

        if self.messenger is None or isinstance(self.screen, DisplayNameScreen):
            return
        self.push_screen(
            DisplayNameScreen(self.messenger.identity().display_name), self._name_changed
        )

    def _name_changed(self, name: str | None) -> None:
        if name is None:
            return
        self._publish_link()  # the link carries the name
        for screen in self.screen_stack:
            screen.post_message(DisplayNameChanged(name))
        self.notify(f"You are now {name}; your contacts are told.", title="Display name")

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Key bindings and what the glyphs mean", self.action_help)
        yield SystemCommand(
            "Theme: dark/light", "Switch between dark and light", self.action_toggle_dark
        )
        if self.messenger is not None:
            yield SystemCommand("My contact link", "Your link and its QR code", self.action_my_link)
            yield SystemCommand(
                "Copy my contact link",
                "Put your link on the clipboard, to paste it to someone",
                self.action_copy_link,
            )
            yield SystemCommand(
                "Change display name", "The name your contacts see", self.action_change_name
            )
            yield SystemCommand(
                "Reconnect now",
                "Dial every known peer at once instead of waiting (Ctrl+R)",
                self.action_reconnect,
            )
            yield SystemCommand(
                "Bandwidth",
                "What the node sends and receives, per protocol and message kind (F8)",
                self.action_bandwidth,
            )
            yield SystemCommand(
                "What we send",
                "Opt-in telemetry: status, the next batch byte for byte, pause, opt out (F10)",
                self.action_telemetry,
            )
        actions = getattr(screen, "palette_commands", None)
        if actions is not None:
            yield from actions()


def run_tui(session: Session, *, passphrase: str | None) -> int:
    """Run the TUI until the user quits; the exit code."""
    with no_terminal_logging():
        code = ChinwagApp(session, passphrase=passphrase).run()
    return code if isinstance(code, int) else 0


if TYPE_CHECKING:
    _host: type[ChatHost] = ChinwagApp  # mypy: the app is everything screens expect of it
