"""Your contact link and its QR code: what you give people so they can add you."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from chat.events import IdentityView
from ui.widgets.qr_view import QrView


class LinkScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]

    def __init__(self, identity: IdentityView) -> None:
        super().__init__()
        self.identity = identity

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="link-box", classes="dialog"):
            yield Static(f"{self.identity.display_name}", classes="dialog-title", markup=False)
            yield Static(f"chat key {self.identity.chat_key}", classes="muted", markup=False)
            yield QrView(
                self.identity.contact_link,
                caption="Share this link (or let them scan the code) so people can add you:",
            )
            yield Button("Continue", variant="primary", id="close-link")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
