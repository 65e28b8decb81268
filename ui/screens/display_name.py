"""Change our display name: the name contacts see. Enter saves (the messenger cleans it like
every name and tells our contacts), Esc leaves it as it is."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from chat.errors import UserError
from chat.session import MAX_DISPLAY_NAME
from ui.bridge import BridgeClosed
from ui.host import NOT_RUNNING, ChatHost, host


class DisplayNameScreen(ModalScreen[str | None]):
    """Dismisses with the new name once the messenger took it, or None."""

    AUTO_FOCUS = "#new-display-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="name-box", classes="dialog"):
            yield Static("Your display name", classes="dialog-title")
            yield Static(
                "What your contacts see. They are told when you change it; your contact "
                "link carries the new name.",
                classes="muted",
            )
            yield Input(
                self.current,
                placeholder="your display name",
                max_length=MAX_DISPLAY_NAME * 2,
                id="new-display-name",
            )
            yield Static("", id="name-error", classes="error", markup=False)
            yield Static("Enter saves · Esc cancels", classes="muted")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        messenger = self.chinwag.messenger
        error = self.query_one("#name-error", Static)
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        try:
            identity = await self.chinwag.bridge.call(messenger.set_display_name, event.value)
        except (UserError, BridgeClosed) as exc:
            text = str(exc)
            error.update(text[:1].upper() + text[1:] + ".")
            return
        self.dismiss(identity.display_name)

    def action_close(self) -> None:
        self.dismiss(None)
