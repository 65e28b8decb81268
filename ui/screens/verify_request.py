"""A contact asks to verify (or the verification we started is ready): compare the emoji now
(y or Enter opens the verify screen), decline (n tells them), or decide later (Esc; the
verification stays open and F2 → v shows it)."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from chat.events import ContactView, Event, VerificationUpdated
from ui.host import ChatHost, host

OPEN = frozenset({"started", "compare", "confirmed"})
ARM_DELAY = 1.0
"""Seconds the prompt ignores y, n and Enter after it appears: it comes up over whatever the
user is doing, and keys typed for the composer must not answer it (Esc works at once)."""


class VerificationRequestScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "compare", "Compare emoji"),
        Binding("n", "decline", "Decline"),
        Binding("escape", "later", "Later"),
    ]

    def __init__(self, contact: ContactView, *, theirs: bool) -> None:
        super().__init__()
        self.contact = contact
        self.theirs = theirs
        """They started it (else we did, and closed the verify screen meanwhile)."""
        self.armed_at = time.monotonic() + ARM_DELAY

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        name = self.contact.display_name or self.contact.chat_key
        if self.theirs:
            title = "Verification request"
            text = f"{name} wants to verify you by comparing emoji."
        else:
            title = "Verification ready"
            text = f"{name} answered: the emoji are ready to compare."
        with Vertical(id="verify-request-box", classes="dialog"):
            yield Static(title, classes="dialog-title")
            yield Static(text, id="verify-request-text", markup=False)
            yield Static(
                "Compare them face to face or on a call you trust: if they match, nobody "
                "sits between you.",
                classes="muted",
            )
            with Horizontal(id="verify-request-buttons"):
                yield Button("Compare emoji (y)", variant="primary", id="verify-compare")
                yield Button("Decline (n)", variant="error", id="verify-decline")
                yield Button("Later (Esc)", id="verify-later")

    def on_mount(self) -> None:
        self.query_one("#verify-compare", Button).focus()

    def handle_event(self, event: Event) -> None:
        if (
            isinstance(event, VerificationUpdated)
            and event.verification.chat_key == self.contact.chat_key
            and event.verification.state not in OPEN
        ):
            name = self.contact.display_name or "The contact"
            self.notify(f"{name} stopped the verification.", title="Verification")
            if self.app.screen is self:  # dismiss pops the top screen, whichever it is
                self.dismiss(None)

    def _armed(self) -> bool:
        return time.monotonic() >= self.armed_at

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "verify-later":
            self.action_later()
        elif not self._armed():
            return
        elif event.button.id == "verify-compare":
            self.action_compare()
        elif event.button.id == "verify-decline":
            await self.action_decline()

    def action_compare(self) -> None:
        from ui.screens.verify import VerifyScreen

        if not self._armed():
            return
        contact = self.contact
        self.dismiss(None)
        self.app.push_screen(VerifyScreen(contact))

    async def action_decline(self) -> None:
        if not self._armed():
            return
        messenger = self.chinwag.messenger
        if messenger is not None:
            await self.chinwag.call(messenger.cancel_verification, self.contact.chat_key)
        self.dismiss(None)

    def action_later(self) -> None:
        self.notify("The verification stays open: F2, select the contact, press v.")
        self.dismiss(None)
