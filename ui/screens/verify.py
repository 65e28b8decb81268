"""Verify a contact by comparing emoji (SAS, through the messenger).

Opening the screen starts a verification with the contact (unless one is under way, e.g.
they started it); both of you then see the same seven emoji if, and only if, nobody sits in
between. y: they match (the contact becomes verified once both sides confirmed); n: they
differ (the verification is cancelled and the contact told).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from chat.events import ContactView, Event, VerificationUpdated, VerificationView
from ui.format import emoji_grid
from ui.host import ChatHost, host

UNDER_WAY = frozenset({"started", "compare", "confirmed"})
STATE_WORDS = {
    "none": "not verified",
    "started": "asking them… (they must be online)",
    "compare": "compare these emoji with your contact, face to face or on a call you trust",
    "confirmed": "you confirmed; waiting for them to confirm",
    "verified": "✔ verified: the link you added really is theirs",
    "cancelled": "cancelled: the contact is not verified",
    "failed": "failed: the codes did not match. Do not trust this contact; get their link again",
}


class VerifyScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "match", "They match"),
        Binding("n", "differ", "They differ"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, contact: ContactView) -> None:
        super().__init__()
        self.contact = contact
        self.view: VerificationView | None = None

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        name = self.contact.display_name or self.contact.chat_key
        with Vertical(id="verify-box", classes="dialog"):
            yield Static(f"Verify {name}", classes="dialog-title", markup=False)
            yield Static("", id="verify-state", markup=False)
            yield Static("", id="verify-emoji", markup=False)
            yield Static("y they match · n they differ · Esc closes", classes="muted")

    async def on_mount(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        current = messenger.verification(self.contact.chat_key)
        if current.state in UNDER_WAY:
            self.show(current)
        else:
            started = await self.chinwag.call(messenger.start_verification, self.contact.chat_key)
            self.show(started or current)

    def show(self, view: VerificationView) -> None:
        self.view = view
        words = STATE_WORDS.get(view.state, view.state)
        if view.state == "confirmed" and view.they_confirmed:
            words = "both confirmed; finishing…"
        elif view.state == "compare" and view.they_confirmed:
            words += " (they already confirmed)"
        self.query_one("#verify-state", Static).update(words)
        emoji = view.emoji if view.state in ("compare", "confirmed", "verified") else []
        # The dialog is 84 wide (7 emoji of 11 columns) where the window allows.
        room = min(self.app.size.width, 84) - 6
        self.query_one("#verify-emoji", Static).update(emoji_grid(list(emoji), room))

    def handle_event(self, event: Event) -> None:
        is_ours = (
            isinstance(event, VerificationUpdated)
            and event.verification.chat_key == self.contact.chat_key
        )
        if is_ours:
            assert isinstance(event, VerificationUpdated)
            self.show(event.verification)

    async def action_match(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None or self.view is None or self.view.state != "compare":
            return
        updated = await self.chinwag.call(messenger.confirm_verification, self.contact.chat_key)
        if updated is not None:
            self.show(updated)

    async def action_differ(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None or self.view is None or self.view.state not in UNDER_WAY:
            return
        updated = await self.chinwag.call(messenger.cancel_verification, self.contact.chat_key)
        if updated is not None:
            self.show(updated)

    def action_close(self) -> None:
        self.dismiss(None)
