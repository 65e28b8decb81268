"""Unlock an existing profile. A wrong passphrase is one plain sentence, never a traceback.

Given a passphrase (CHINWAG_PASSPHRASE), the screen unlocks with it at once and, should that
fail, shows the error that unlocking returned, as for a typed one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, LoadingIndicator, Static

from ui.host import host


class UnlockScreen(Screen[None]):
    AUTO_FOCUS = "#passphrase"

    def __init__(self, passphrase: str | None = None) -> None:
        super().__init__()
        self.given = passphrase

    def compose(self) -> ComposeResult:
        app = host(self)
        with Center(), Vertical(id="unlock-box", classes="dialog"):
            yield Static("chinwag", classes="dialog-title")
            yield Static(f"Unlock profile '{app.profile}'", id="unlock-profile")
            yield Input(placeholder="passphrase", password=True, id="passphrase")
            yield Static("", id="unlock-error", classes="error")
            yield LoadingIndicator(id="unlock-busy")
            yield Button("Unlock", variant="primary", id="unlock")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#unlock-busy").display = False
        if self.given:
            self.run_worker(self._unlock_with(self.given), exclusive=True, group="unlock")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self._unlock()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self._unlock()

    async def _unlock(self) -> None:
        field = self.query_one("#passphrase", Input)
        if not field.value:
            self.query_one("#unlock-error", Static).update(
                "Type your passphrase, then press Enter."
            )
            return
        await self._unlock_with(field.value)

    async def _unlock_with(self, passphrase: str) -> None:
        field = self.query_one("#passphrase", Input)
        error = self.query_one("#unlock-error", Static)
        busy = self.query_one("#unlock-busy")
        busy.display = True
        error.update("Unlocking…")
        field.disabled = True
        problem = await host(self).unlock(passphrase)
        busy.display = False
        field.disabled = False
        if problem is not None:
            error.update(problem[:1].upper() + problem[1:])
            field.value = ""
            field.focus()
        else:
            error.update("Starting the network…")
