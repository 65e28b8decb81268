"""Unlock an existing profile. A wrong passphrase is one plain sentence, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, LoadingIndicator, Static

if TYPE_CHECKING:
    from ui.app import ChinwagApp


class UnlockScreen(Screen[None]):
    AUTO_FOCUS = "#passphrase"

    def compose(self) -> ComposeResult:
        app = cast("ChinwagApp", self.app)
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

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self._unlock()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self._unlock()

    async def _unlock(self) -> None:
        app = cast("ChinwagApp", self.app)
        field = self.query_one("#passphrase", Input)
        error = self.query_one("#unlock-error", Static)
        if not field.value:
            error.update("Type your passphrase, then press Enter.")
            return
        busy = self.query_one("#unlock-busy")
        busy.display = True
        error.update("Unlocking…")
        field.disabled = True
        problem = await app.unlock(field.value)
        busy.display = False
        field.disabled = False
        if problem is not None:
            error.update(problem[:1].upper() + problem[1:])
            field.value = ""
            field.focus()
        else:
            error.update("Starting the network…")
