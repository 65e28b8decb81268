"""The chinwag TUI: unlock or create a profile, then talk to `chat.Messenger` through the
trio guest-run bridge.

The app owns three things for its lifetime: the trio bridge, the unlocked profile (and its
lock), and the messenger running in the bridge's nursery. Screens never touch storage or the
node; they call the messenger through `ChinwagApp.call`, which turns a MessengerError into a
notification instead of a traceback.

Launch order, for speed: libp2p (via chat.messenger) is imported in a worker thread while
the passphrase is derived; once the profile is open the main screen shows the chats read
from the store (`chat_source()`), and attaches to the messenger when its node is up. The
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
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

import trio
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from chat.config import Config
from chat.errors import UserError
from chat.events import MessageAdded, MessageView, VerificationUpdated
from chat.history import StoredChats
from chat.identity_store import ensure_identity
from chat.logs import register_secret
from chat.unlock import profile_lock
from storage.aio import AsyncStore
from storage.errors import StorageError
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store
from ui.bridge import BridgeClosed, TrioBridge
from ui.messages import MessengerEvent, MessengerFailed, MessengerReady
from ui.notify import desktop_notification

if TYPE_CHECKING:
    from chat.messenger import Messenger, MessengerConfig

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

EVENT_BUFFER = 10_000
"""Events the UI may fall behind by before it loses some (the messenger counts them)."""


def _preload_messenger() -> None:
    """Import chat.messenger (and libp2p under it) off the UI thread, once."""
    with contextlib.suppress(Exception):
        importlib.import_module("chat.messenger")


class ChinwagApp(App[int]):
    """`ChinwagApp(config).run()`; `passphrase` skips the unlock screen, and `derived_key`
    (that passphrase's key, being derived already) saves waiting for the derivation again."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "chinwag"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("f6", "toggle_dark", "Theme", show=False),
    ]

    def __init__(
        self,
        config: Config,
        *,
        passphrase: str | None = None,
        derived_key: Future[bytes] | None = None,
        messenger_config: MessengerConfig | None = None,
        kdf: Callable[[], KdfParams] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config = config
        self.profiles = Profiles(config.profiles_dir, on_key=register_secret)
        self.bridge = TrioBridge()
        self.clock = clock
        self.messenger: Messenger | None = None
        self.messenger_ready = asyncio.Event()
        self.store: Store | None = None
        self.db: AsyncStore | None = None
        """The store's one async runner, shared by the messenger and the early reads."""
        self._initial_passphrase = passphrase
        self._derived_key = derived_key
        self._messenger_config = messenger_config
        self._kdf = kdf
        self._locks = contextlib.ExitStack()
        self._core_stopping: asyncio.Future[None] | None = None
        self._verification_states: dict[str, str] = {}
        """The last verification state seen per contact: tells their start from ours."""
        self.startup_started = time.perf_counter()
        self.ready_at: float | None = None
        """perf_counter when the chat list was first shown (the launch benchmark reads it)."""

    # ---- lifecycle ---------------------------------------------------------------------
    @property
    def profile(self) -> str:
        return self.config.profile

    async def on_mount(self) -> None:
        threading.Thread(target=_preload_messenger, name="preload", daemon=True).start()
        self.theme = "textual-dark"
        await self.bridge.start()
        from ui.screens.onboarding import OnboardingScreen
        from ui.screens.unlock import UnlockScreen

        if not self.profiles.exists(self.profile):
            await self.push_screen(OnboardingScreen())
            return
        await self.push_screen(UnlockScreen())
        if self._initial_passphrase:
            error = await self.unlock(self._initial_passphrase)
            if error is not None:
                self.screen.query_one("#unlock-error").update(error)  # type: ignore[attr-defined]

    async def unlock(self, passphrase: str) -> str | None:
        """Open the profile and start the messenger; or the sentence that says why not."""
        try:
            self._locks.enter_context(
                profile_lock(self.profiles.directory(self.profile), self.profile)
            )
            early = self._derived_key if passphrase == self._initial_passphrase else None
            self._derived_key = None  # used once: a retyped passphrase derives afresh
            if early is not None:
                key = await self.bridge.call(trio.to_thread.run_sync, early.result)
                store = await self.bridge.call(
                    trio.to_thread.run_sync, self.profiles.open, self.profile, key
                )
            else:
                store = await self.bridge.call(
                    trio.to_thread.run_sync, self.profiles.unlock, self.profile, passphrase
                )
        except (UserError, StorageError) as exc:
            self._locks.close()
            return str(exc)
        await self._opened(store, new_profile=False)
        return None

    async def create_profile(self, display_name: str, passphrase: str) -> str | None:
        """Create the profile with its chat identity, then start the messenger."""
        kdf = self._kdf() if self._kdf is not None else None
        now = self.clock()

        def create() -> Store:
            store = self.profiles.create(
                self.profile, passphrase, display_name=display_name, now=int(now * 1000), kdf=kdf
            )
            try:
                ensure_identity(store, now)
            except BaseException:
                store.close()
                raise
            return store

        try:
            store = await self.bridge.call(trio.to_thread.run_sync, create)
            self._locks.enter_context(
                profile_lock(self.profiles.directory(self.profile), self.profile)
            )
        except (UserError, StorageError) as exc:
            return str(exc)
        await self._opened(store, new_profile=True)
        return None

    async def _opened(self, store: Store, *, new_profile: bool) -> None:
        """Show the chats at once, read from the store; the messenger (libp2p, the node)
        starts meanwhile and the main screen attaches to it when it is up."""
        from ui.screens.main import MainScreen

        self.store = store
        self.db = AsyncStore(store)
        self.bridge.start_soon(self._messenger_main, store, new_profile)
        if not isinstance(self.screen, MainScreen):
            # Not awaited: we are inside the unlock (or onboarding) screen's own handler,
            # which the switch has to wait for.
            self.switch_screen(MainScreen())

    def chat_source(self) -> Messenger | StoredChats | None:
        """Where chats and messages are read from: the messenger once it runs, before that
        the store alone (no live outbox state yet), None before unlocking."""
        if self.messenger is not None:
            return self.messenger
        return StoredChats(self.db) if self.db is not None else None

    async def wait_for_messenger(self) -> Messenger | None:
        """The messenger once it runs; None if it stopped (the app says why)."""
        await self.messenger_ready.wait()
        return self.messenger

    def messenger_config(self) -> MessengerConfig:
        from chat.messenger import MessengerConfig

        if self._messenger_config is not None:
            return self._messenger_config
        network = self.config.network
        return MessengerConfig(
            peers=network.peers, cluster_id=network.cluster_id, shards=network.shards
        )

    async def _messenger_main(self, store: Store, new_profile: bool) -> None:
        """Trio side: run the messenger and forward its events until the bridge stops."""
        try:
            # Off the loop: the preload thread may be mid-import, and waiting for its module
            # lock here would freeze the UI (the main screen's first paint) until it is done.
            await trio.to_thread.run_sync(importlib.import_module, "chat.messenger")
            from chat.messenger import Messenger

            messenger = Messenger(store, self.messenger_config(), db=self.db)
            async with messenger.run():
                events = messenger.subscribe(EVENT_BUFFER)
                self.messenger = messenger
                self.post_message(MessengerReady())
                if new_profile:
                    self.call_later(self.action_my_link)
                with events:
                    async for event in events:
                        self.post_message(MessengerEvent(event))
        except Exception as exc:
            log.exception("the messenger stopped")
            self.post_message(MessengerFailed(str(exc) or type(exc).__name__))
        finally:
            self.messenger = None

    async def on_messenger_ready(self, _: MessengerReady) -> None:
        from ui.screens.main import MainScreen

        self.messenger_ready.set()
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                await screen.attach()

    def on_messenger_failed(self, message: MessengerFailed) -> None:
        self.messenger_ready.set()
        self.notify(
            f"The network core stopped: {message.reason}. See the log file for details.",
            title="chinwag",
            severity="error",
            timeout=30,
        )

    def on_messenger_event(self, message: MessengerEvent) -> None:
        event = message.event
        for screen in self.screen_stack:
            handler = getattr(screen, "handle_event", None)
            if handler is not None:
                handler(event)
        if isinstance(event, MessageAdded):
            self._maybe_notify(event.message)
        elif isinstance(event, VerificationUpdated):
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
        if self.config.notify_bell and theirs:
            self.bell()
        await self.push_screen(VerificationRequestScreen(contact, theirs=theirs))

    def _maybe_notify(self, message: MessageView) -> None:
        if message.outgoing:
            return
        from ui.screens.main import MainScreen

        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        in_view = main is not None and self.screen is main and main.current_chat == message.chat_id
        if in_view and self.app_focus:
            return
        if self.config.notify_bell:
            self.bell()
        if self.config.notify_desktop:
            name = main.chat_name(message.chat_id) if main is not None else "a contact"
            self.run_worker(desktop_notification("chinwag", f"New message from {name}"))

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
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            self.store = None
        self._locks.close()

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

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_my_link(self) -> None:
        from ui.screens.link import LinkScreen

        if self.messenger is not None and not isinstance(self.screen, LinkScreen):
            self.push_screen(LinkScreen(self.messenger.identity()))

    def action_change_name(self) -> None:
        from ui.screens.display_name import DisplayNameScreen

        if self.messenger is None or isinstance(self.screen, DisplayNameScreen):
            return
        self.push_screen(
            DisplayNameScreen(self.messenger.identity().display_name), self._name_changed
        )

    def _name_changed(self, name: str | None) -> None:
        from ui.screens.main import MainScreen

        if name is None:
            return
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.set_own_name(name)
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
                "Change display name", "The name your contacts see", self.action_change_name
            )
        actions = getattr(screen, "palette_commands", None)
        if actions is not None:
            yield from actions()


def run_tui(
    config: Config, *, passphrase: str | None, derived_key: Future[bytes] | None = None
) -> int:
    """Run the TUI until the user quits; the exit code."""
    app = ChinwagApp(config, passphrase=passphrase, derived_key=derived_key)
    code = app.run()
    return code if isinstance(code, int) else 0
